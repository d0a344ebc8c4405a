// File system names for error messages: an operator told "O_DIRECT is not
// supported on /var/lib/logseal (file system tmpfs)" knows what to change.
#include <linux/magic.h>
#include <sys/vfs.h>

#include <cstdio>

#include "io/io_internal.h"

namespace logseal::io {
namespace {

struct FsName {
  unsigned long magic;
  const char* name;
};

// The file systems a data directory plausibly sits on. ext2/3/4 share one magic.
constexpr FsName kFsNames[] = {
    {EXT4_SUPER_MAGIC, "ext4"},
    {XFS_SUPER_MAGIC, "xfs"},
    {BTRFS_SUPER_MAGIC, "btrfs"},
    {F2FS_SUPER_MAGIC, "f2fs"},
    {TMPFS_MAGIC, "tmpfs"},
    {RAMFS_MAGIC, "ramfs"},
    {OVERLAYFS_SUPER_MAGIC, "overlayfs"},
    {FUSE_SUPER_MAGIC, "fuse"},
    {NFS_SUPER_MAGIC, "nfs"},
    {CIFS_SUPER_MAGIC, "cifs"},
    {SMB2_SUPER_MAGIC, "smb2"},
    {V9FS_MAGIC, "9p"},
    {ECRYPTFS_SUPER_MAGIC, "ecryptfs"},
    {SQUASHFS_MAGIC, "squashfs"},
    {MSDOS_SUPER_MAGIC, "vfat"},
    {EXFAT_SUPER_MAGIC, "exfat"},
    {HUGETLBFS_MAGIC, "hugetlbfs"},
    {PROC_SUPER_MAGIC, "proc"},
    {SYSFS_MAGIC, "sysfs"},
    {0x2fc12fc1UL, "zfs"},
    {0xca451a4eUL, "bcachefs"},
};

}  // namespace

std::string fs_type_name_of(const std::string& path) {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0) return "unknown";
  auto magic = static_cast<unsigned long>(st.f_type) & 0xffffffffUL;
  for (const FsName& fs : kFsNames) {
    if (fs.magic == magic) return fs.name;
  }
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%lx", magic);
  return hex;
}

}  // namespace logseal::io
