// logseal-loadgen --proto tls: the client side of syslog over TLS (RFC 5425) with
// OpenSSL 3. The frames are the same pre-built octet-counted buffer as
// tcp-octet; SSL_write cuts it into 16 KiB records.
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "bench/loadgen.h"

namespace loadgen {

namespace {

std::string ssl_errors() {
  std::string s;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!s.empty()) s += "; ";
    s += buf;
  }
  return s.empty() ? "unknown TLS error" : s;
}

class OpenSslConnection final : public TlsConnection {
 public:
  OpenSslConnection(SSL_CTX* ctx, SSL* ssl, int fd) : ctx_(ctx), ssl_(ssl), fd_(fd) {}
  ~OpenSslConnection() override {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ::close(fd_);
  }

  bool write_all(std::string_view data) override {
    while (!data.empty()) {
      // SSL_write takes an int length; 1 MiB slices keep it far from the limit.
      int n = static_cast<int>(std::min<size_t>(data.size(), 1u << 20));
      size_t written = 0;
      if (SSL_write_ex(ssl_, data.data(), static_cast<size_t>(n), &written) != 1) {
        error_ = "TLS write: " + ssl_errors();
        return false;
      }
      data.remove_prefix(written);
    }
    return true;
  }

  void shutdown() override {
    SSL_shutdown(ssl_);
    // Wait for the server's close (or a short grace) so every record was read.
    timeval tv{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char tmp[256];
    size_t got = 0;
    while (SSL_read_ex(ssl_, tmp, sizeof tmp, &got) == 1) {
    }
    ERR_clear_error();
  }

  const std::string& error() const override { return error_; }

 private:
  SSL_CTX* ctx_;
  SSL* ssl_;
  int fd_;
  std::string error_;
};

}  // namespace

std::unique_ptr<TlsConnection> connect_tls(const Args& a) {
  if (a.ca_file.empty()) die("--proto tls needs --ca FILE (the CA the server certificate chains to)");
  if (a.cert_file.empty() != a.key_file.empty()) die("--cert and --key go together");
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) die("TLS: " + ssl_errors());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx, a.ca_file.c_str(), nullptr) != 1) {
    die("cannot load --ca " + a.ca_file + ": " + ssl_errors());
  }
  if (!a.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, a.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, a.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      die("cannot load --cert/--key " + a.cert_file + ", " + a.key_file + ": " + ssl_errors());
    }
  }
  int fd = connect_tcp(a);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  // The target is an address; the server certificate must name it (SAN IP:...).
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  in_addr probe{};
  if (inet_pton(AF_INET, a.host.c_str(), &probe) == 1) {
    X509_VERIFY_PARAM_set1_ip_asc(param, a.host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, a.host.c_str());
    X509_VERIFY_PARAM_set1_host(param, a.host.c_str(), 0);
  }
  if (SSL_connect(ssl) != 1) {
    long v = SSL_get_verify_result(ssl);
    std::string why = v != X509_V_OK ? X509_verify_cert_error_string(v) : ssl_errors();
    die("TLS handshake with " + a.host + ":" + std::to_string(a.port) + ": " + why);
  }
  return std::make_unique<OpenSslConnection>(ctx, ssl, fd);
}

}  // namespace loadgen
