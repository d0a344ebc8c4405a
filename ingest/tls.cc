#include "ingest/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace logseal::ingest {

namespace {

// Session id context: OpenSSL refuses to resume a session whose context differs,
// and with client verification on, it fails every resumption when none is set.
constexpr unsigned char kSessionIdContext[] = "logseal";
constexpr int kSecurityLevelMin = 2;

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct CtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};

// Never prompt on a terminal for a passphrase: the daemon runs unattended, and
// OpenSSL's default callback would block the starting thread on /dev/tty.
int no_password(char*, int, int, void*) { return 0; }

// Drains this thread's OpenSSL error queue into "reason (detail); reason". The
// queue is per thread and shared by every session on it, so it must be left empty.
std::string drain_errors() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  unsigned long err;
  while ((err = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0) {
    const char* reason = ERR_reason_error_string(err);
    char buf[256];
    if (reason == nullptr) {
      ERR_error_string_n(err, buf, sizeof(buf));
      reason = buf;
    }
    std::string one = reason;
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && data[0] != '\0') one += std::string(" (") + data + ")";
    // OpenSSL often queues the same reason twice (once per layer).
    if (out.find(one) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += one;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// OpenSSL's errors for a missing file are "system library" noise; check first so
// the message names the file and the errno.
Status check_readable(const std::string& path, const char* what) {
  if (path.empty()) return invalid_argument(std::string(what) + " is not set");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    int e = errno;
    std::string m = std::string(what) + " " + path + ": " + std::strerror(e);
    return e == ENOENT ? not_found(m) : invalid_argument(m);
  }
  std::fclose(f);
  return ok_status();
}

// Keeps identity strings printable ASCII: a CA-signed certificate can still carry
// control bytes that would forge log lines or break a config match.
// keep_backslash: the text is already escaped (RFC 2253 output) and '\' is its
// escape character.
std::string escape_identity(const unsigned char* p, size_t n, bool keep_backslash = false) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = p[i];
    if (c >= 0x20 && c < 0x7f && (c != '\\' || keep_backslash)) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string asn1_text(const ASN1_STRING* s) {
  return escape_identity(ASN1_STRING_get0_data(s), static_cast<size_t>(std::max(0, ASN1_STRING_length(s))));
}

}  // namespace

// ---------------------------------------------------------------------------
// TlsContext

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

Result<std::shared_ptr<TlsContext>> TlsContext::create(const TlsServerConfig& config) {
  ERR_clear_error();
  if (config.require_client_cert && config.ca_file.empty()) {
    return invalid_argument("TLS: require_client_cert needs ca_file (the CAs client certificates must chain to)");
  }
  LS_RETURN_IF_ERROR(check_readable(config.cert_file, "TLS cert_file"));
  LS_RETURN_IF_ERROR(check_readable(config.key_file, "TLS key_file"));
  if (!config.ca_file.empty()) LS_RETURN_IF_ERROR(check_readable(config.ca_file, "TLS ca_file"));

  std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return internal_error("TLS: SSL_CTX_new: " + drain_errors());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_default_passwd_cb(c, no_password);
  if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1) {
    return internal_error("TLS: cannot set minimum version TLS 1.2: " + drain_errors());
  }
  // The system configuration may already ask for more; never ask for less.
  SSL_CTX_set_security_level(c, std::max(kSecurityLevelMin, SSL_CTX_get_security_level(c)));
  // Renegotiation lets a peer make the server do handshakes forever on one
  // connection and would produce output the caller did not feed for.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Thousands of mostly idle syslog connections: drop OpenSSL's ~34 KiB of
  // record buffers between records.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof(kSessionIdContext) - 1) != 1) {
    return internal_error("TLS: session id context: " + drain_errors());
  }

  if (SSL_CTX_use_certificate_chain_file(c, config.cert_file.c_str()) != 1) {
    return invalid_argument("TLS cert_file " + config.cert_file + ": no usable PEM certificate: " + drain_errors());
  }
  X509* cert = SSL_CTX_get0_certificate(c);
  if (cert == nullptr) return invalid_argument("TLS cert_file " + config.cert_file + ": no certificate");

  {
    std::unique_ptr<BIO, BioFree> bio(BIO_new_file(config.key_file.c_str(), "r"));
    if (!bio) return invalid_argument("TLS key_file " + config.key_file + ": " + drain_errors());
    std::unique_ptr<EVP_PKEY, PkeyFree> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
    if (!key) {
      return invalid_argument("TLS key_file " + config.key_file +
                              ": no usable PEM private key (encrypted keys are not supported): " + drain_errors());
    }
    if (X509_check_private_key(cert, key.get()) != 1) {
      ERR_clear_error();
      return invalid_argument("TLS key_file " + config.key_file + " does not match the certificate in cert_file " +
                              config.cert_file);
    }
    if (SSL_CTX_use_PrivateKey(c, key.get()) != 1) {
      return invalid_argument("TLS key_file " + config.key_file + ": " + drain_errors());
    }
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return invalid_argument("TLS key_file " + config.key_file + " does not match the certificate in cert_file " +
                            config.cert_file + ": " + drain_errors());
  }

  if (config.ca_file.empty()) {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
  } else {
    if (SSL_CTX_load_verify_file(c, config.ca_file.c_str()) != 1) {
      return invalid_argument("TLS ca_file " + config.ca_file + ": no usable PEM CA certificate: " + drain_errors());
    }
    // The CertificateRequest names the acceptable CAs, so clients holding
    // several certificates pick the right one.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.ca_file.c_str());
    if (names == nullptr) {
      return invalid_argument("TLS ca_file " + config.ca_file + ": no usable PEM CA certificate: " + drain_errors());
    }
    SSL_CTX_set_client_CA_list(c, names);  // takes ownership
    // A presented certificate must verify even when optional: an unverified
    // identity must never reach peer_subject().
    int mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    if (config.require_client_cert) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(c, mode, nullptr);
  }
  ERR_clear_error();
  return std::shared_ptr<TlsContext>(new TlsContext(ctx.release()));
}

// ---------------------------------------------------------------------------
// TlsSession

TlsSession::TlsSession(std::shared_ptr<TlsContext> ctx) : ctx_(std::move(ctx)) {
  LS_ASSERT(ctx_ != nullptr);
  ERR_clear_error();
  ssl_ = SSL_new(ctx_->native());
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || in == nullptr || out == nullptr) {
    failed_ = internal_error("TLS: out of memory creating a session: " + drain_errors());
    BIO_free(in);
    BIO_free(out);
    SSL_free(ssl_);
    ssl_ = nullptr;
    return;
  }
  // An empty input BIO means "wait for more", not end of stream: the caller
  // learns about EOF from the socket, never OpenSSL.
  BIO_set_mem_eof_return(in, -1);
  SSL_set_bio(ssl_, in, out);  // ssl_ owns both now
  in_ = in;
  out_bio_ = out;
  SSL_set_accept_state(ssl_);
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

Status TlsSession::feed(std::string_view ciphertext, std::string& plain) {
  if (!failed_.ok()) return failed_;
  if (peer_closed_) return ok_status();
  do {
    // Chunked so the input BIO never holds more than one chunk plus a partial
    // record, whatever size the caller hands over.
    size_t n = std::min(ciphertext.size(), kTlsChunk);
    if (n > 0 && BIO_write(in_, ciphertext.data(), static_cast<int>(n)) != static_cast<int>(n)) {
      failed_ = internal_error("TLS: out of memory buffering input: " + drain_errors());
      return failed_;
    }
    ciphertext.remove_prefix(n);
    LS_RETURN_IF_ERROR(process(plain));
    if (peer_closed_) break;
  } while (!ciphertext.empty());
  return ok_status();
}

Status TlsSession::process(std::string& plain) {
  if (!handshake_done_) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ) {
        drain_output();
        return ok_status();
      }
      return fail(e);
    }
    handshake_done_ = true;
    capture_peer();
    drain_output();
  }
  for (;;) {
    char buf[kTlsChunk];
    size_t n = 0;
    ERR_clear_error();
    int r = SSL_read_ex(ssl_, buf, sizeof(buf), &n);
    if (r == 1) {
      plain.append(buf, n);
      continue;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ) {
      // Post-handshake messages (TLS 1.3 KeyUpdate) may have queued an answer.
      drain_output();
      return ok_status();
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      drain_output();
      return ok_status();
    }
    return fail(e);
  }
}

Status TlsSession::fail(int ssl_error) {
  std::string reason;
  if (ssl_error == SSL_ERROR_SSL) {
    // Rewrite the two reasons operators meet most into what to fix.
    const char* data = nullptr;
    int flags = 0;
    unsigned long err;
    while ((err = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0) {
      std::string one;
      if (ERR_GET_LIB(err) == ERR_LIB_SSL && ERR_GET_REASON(err) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        one = "peer did not present a certificate";
      } else if (ERR_GET_LIB(err) == ERR_LIB_SSL && ERR_GET_REASON(err) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        one = std::string("certificate verify failed: ") +
              X509_verify_cert_error_string(SSL_get_verify_result(ssl_));
      } else {
        const char* r = ERR_reason_error_string(err);
        char buf[256];
        if (r == nullptr) {
          ERR_error_string_n(err, buf, sizeof(buf));
          r = buf;
        }
        one = r;
        if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && data[0] != '\0') one += std::string(" (") + data + ")";
      }
      if (reason.find(one) == std::string::npos) reason += (reason.empty() ? "" : "; ") + one;
    }
    if (reason.empty()) reason = "protocol error";
  } else if (ssl_error == SSL_ERROR_SYSCALL) {
    // Memory BIOs make no syscalls; this is OpenSSL running out of memory or a bug.
    failed_ = internal_error("TLS: unexpected SSL_ERROR_SYSCALL: " + drain_errors());
    drain_output();
    return failed_;
  } else {
    reason = "unexpected SSL_get_error " + std::to_string(ssl_error) + ": " + drain_errors();
  }
  ERR_clear_error();
  failed_ = invalid_argument(std::string(handshake_done_ ? "TLS: " : "TLS handshake: ") + reason);
  // The alert OpenSSL queued tells the peer why; the caller sends it, then closes.
  drain_output();
  return failed_;
}

void TlsSession::drain_output() {
  size_t pending = BIO_ctrl_pending(out_bio_);
  if (pending == 0) return;
  // Compact only when appending, so the caller's partial sends cost nothing.
  if (out_pos_ > 0) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  size_t old = out_.size();
  out_.resize(old + pending);
  int n = BIO_read(out_bio_, out_.data() + old, static_cast<int>(pending));
  out_.resize(old + static_cast<size_t>(std::max(n, 0)));
}

void TlsSession::consume_output(size_t n) {
  LS_ASSERT(n <= out_.size() - out_pos_);
  out_pos_ += n;
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
    // A large write() leaves a large buffer behind; idle connections should not keep it.
    if (out_.capacity() > 4 * kTlsChunk) out_.shrink_to_fit();
  }
}

Status TlsSession::write(std::string_view plain) {
  if (!failed_.ok()) return failed_;
  if (shutdown_sent_ || peer_closed_) return unavailable("TLS: session is closed");
  if (!handshake_done_) return failed_precondition("TLS: write before the handshake is done");
  while (!plain.empty()) {
    // One record's worth at a time keeps the output BIO at one record.
    size_t n = std::min(plain.size(), kTlsChunk);
    size_t written = 0;
    ERR_clear_error();
    int r = SSL_write_ex(ssl_, plain.data(), n, &written);
    if (r != 1) return fail(SSL_get_error(ssl_, r));
    drain_output();
    plain.remove_prefix(written);
  }
  return ok_status();
}

void TlsSession::shutdown() {
  if (ssl_ == nullptr || !failed_.ok() || shutdown_sent_) return;
  shutdown_sent_ = true;
  // Before the handshake there is nothing to close gracefully (and OpenSSL
  // refuses); after a fatal error OpenSSL must not be asked to shut down.
  if (!handshake_done_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // 0: close_notify queued, the peer's not seen yet; both fine
  ERR_clear_error();
  drain_output();
}

std::string TlsSession::connection_summary() const {
  if (!handshake_done_) return "";
  return std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
}

void TlsSession::capture_peer() {
  X509* cert = SSL_get0_peer_certificate(ssl_);
  // With verification on, a certificate that failed it ends the handshake; this
  // check keeps an unverified identity out even if that setting changes.
  if (cert == nullptr || SSL_get_verify_result(ssl_) != X509_V_OK) return;

  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio && X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    // RFC 2253 flags escape control and non-ASCII bytes already; this is a backstop.
    if (len > 0) {
      peer_subject_ = escape_identity(reinterpret_cast<unsigned char*>(data), static_cast<size_t>(len), true);
    }
  }

  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names) {
    int count = sk_GENERAL_NAME_num(names.get());
    for (int i = 0; i < count && peer_sans_.size() < kPeerSansMax; ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
      switch (gn->type) {
        case GEN_DNS:
          peer_sans_.push_back("DNS:" + asn1_text(gn->d.dNSName));
          break;
        case GEN_EMAIL:
          peer_sans_.push_back("email:" + asn1_text(gn->d.rfc822Name));
          break;
        case GEN_URI:
          peer_sans_.push_back("URI:" + asn1_text(gn->d.uniformResourceIdentifier));
          break;
        case GEN_IPADD: {
          const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
          char text[INET6_ADDRSTRLEN] = {};
          int len = ASN1_STRING_length(ip);
          int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
          if (family != 0 && inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof(text)) != nullptr) {
            peer_sans_.push_back(std::string("IP:") + text);
          } else {
            peer_sans_.push_back("IP:" + asn1_text(ip));  // malformed length: show the bytes
          }
          break;
        }
        default:
          break;  // otherName, dirName, RID: no stable text form worth matching on
      }
    }
  }
  ERR_clear_error();
}

}  // namespace logseal::ingest
