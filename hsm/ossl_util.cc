#include "hsm/ossl_util.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace logseal::hsm::internal {

namespace {

// SubjectPublicKeyInfo for id-ecPublicKey / prime256v1 up to the BIT STRING
// header; the uncompressed point (0x04 || X || Y, 65 bytes) follows.
constexpr uint8_t kP256SpkiPrefix[] = {
    0x30, 0x59,                                                  // SEQUENCE (89)
    0x30, 0x13,                                                  //   SEQUENCE (19)
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,        //     id-ecPublicKey
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,  //     prime256v1
    0x03, 0x42, 0x00,                                            //   BIT STRING (66)
};
constexpr size_t kCoordBytes = 32;

struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

}  // namespace

void BioFree::operator()(BIO* p) const { BIO_free(p); }

std::string openssl_error() {
  std::string out;
  unsigned long err;
  while ((err = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

Status check_p256(EVP_PKEY* key, const std::string& what) {
  if (!EVP_PKEY_is_a(key, "EC")) {
    const char* type = EVP_PKEY_get0_type_name(key);
    return invalid_argument(what + " is a " + (type ? type : "non-EC") +
                            " key; logseal needs ECDSA P-256");
  }
  char name[80] = {};
  size_t name_len = 0;
  if (EVP_PKEY_get_group_name(key, name, sizeof(name), &name_len) != 1) {
    ERR_clear_error();
    return invalid_argument(what + " has explicit EC curve parameters; logseal needs the named curve P-256");
  }
  int nid = OBJ_sn2nid(name);
  if (nid == NID_undef) nid = EC_curve_nist2nid(name);
  if (nid != NID_X9_62_prime256v1) {
    return invalid_argument(what + " is on curve " + name + "; logseal needs P-256 (prime256v1)");
  }
  return ok_status();
}

Result<std::vector<uint8_t>> p256_spki_der(EVP_PKEY* key) {
  BIGNUM* x_raw = nullptr;
  BIGNUM* y_raw = nullptr;
  int got_x = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x_raw);
  int got_y = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y_raw);
  BnPtr x(x_raw), y(y_raw);
  if (got_x != 1 || got_y != 1) {
    return data_loss("P-256 key has no public point: " + openssl_error());
  }
  std::vector<uint8_t> der(std::begin(kP256SpkiPrefix), std::end(kP256SpkiPrefix));
  der.push_back(0x04);  // uncompressed point
  size_t at = der.size();
  der.resize(at + 2 * kCoordBytes);
  if (BN_bn2binpad(x.get(), der.data() + at, kCoordBytes) != static_cast<int>(kCoordBytes) ||
      BN_bn2binpad(y.get(), der.data() + at + kCoordBytes, kCoordBytes) !=
          static_cast<int>(kCoordBytes)) {
    return data_loss("P-256 public point coordinate out of range: " + openssl_error());
  }
  return der;
}

std::string spki_pem(const std::vector<uint8_t>& der) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  LS_ASSERT(bio != nullptr);
  LS_ASSERT(PEM_write_bio(bio.get(), "PUBLIC KEY", "", der.data(), static_cast<long>(der.size())) > 0);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  LS_ASSERT(len > 0);
  return std::string(data, static_cast<size_t>(len));
}

Result<std::string> read_small_file(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return not_found("key file " + path + " does not exist");
    return errno_status("open " + path, e);
  }
  // Reserved up front so append never reallocates and leaves an uncleansed copy
  // of a private key behind in freed memory.
  std::string out;
  out.reserve(max_bytes);
  Status st;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      st = errno_status("read " + path, errno);
      break;
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      st = data_loss(path + " is larger than " + std::to_string(max_bytes) + " bytes; not a key file");
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  ::close(fd);
  if (!st.ok()) {
    OPENSSL_cleanse(out.data(), out.size());
    return st;
  }
  return out;
}

// Creates every missing component of dir. New directories are 0700: the leaf
// one holds a private key, and a parent we had to invent is ours alone too.
Status make_dirs(const std::string& dir) {
  if (dir.empty()) return invalid_argument("empty key directory");
  for (size_t pos = 1;; ++pos) {
    pos = dir.find('/', pos);
    std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return errno_status("mkdir " + part, errno);
    }
    if (pos == std::string::npos) break;
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return errno_status("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return failed_precondition(dir + " is not a directory");
  return ok_status();
}

static Status write_all_fsync(int fd, const std::string& path, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("write " + path, errno);
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return errno_status("fsync " + path, errno);
  return ok_status();
}

// Writes a new file with exactly `mode` (fchmod, because umask may have cut
// bits from the create mode). exclusive: fail with AlreadyExists rather than
// touch an existing file. On failure nothing is left behind.
Status write_new_file(const std::string& path, const char* data, size_t len, mode_t mode,
                      bool exclusive) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (exclusive ? O_EXCL : O_TRUNC);
  int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    int e = errno;
    if (e == EEXIST) return Status(Code::kAlreadyExists, path + " exists; refusing to overwrite a key");
    return errno_status("create " + path, e);
  }
  Status st = ::fchmod(fd, mode) == 0 ? write_all_fsync(fd, path, data, len)
                                      : errno_status("fchmod " + path, errno);
  if (::close(fd) != 0 && st.ok()) st = errno_status("close " + path, errno);
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

// Makes the new directory entries durable, not only the file contents.
Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("open " + dir, errno);
  Status st = ::fsync(fd) == 0 ? ok_status() : errno_status("fsync " + dir, errno);
  ::close(fd);
  return st;
}

}  // namespace logseal::hsm::internal
