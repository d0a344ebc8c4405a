// TLS for the listeners (RFC 5425 syslog over TLS; later RELP over TLS and HTTPS)
// as a pure byte transformer: no socket I/O. The io_uring threads own the sockets;
// they hand received ciphertext to a TlsSession and send whatever bytes it
// produces. Inside, OpenSSL talks to two memory BIOs.
//
// Pumping (one connection, one thread):
//
//   on recv(bytes):
//     Status st = session.feed(bytes, plain);    // plain may stay empty (handshake)
//     send pending_output(); consume_output(n) as the socket accepts bytes
//     if (!st.ok()) { log st; close after the output is sent }   // alert queued
//     hand `plain` to the framer
//     if (session.peer_closed()) { session.shutdown(); send pending_output(); close }
//   to answer (RELP, HTTP): session.write(reply); send pending_output()
//   to close: session.shutdown(); send pending_output(); close
//
// Bounds (nothing grows with the length of the connection):
//  - feed() appends to `plain` at most ciphertext.size() + kTlsRecordMax bytes
//    (the only carry-over is one partial record, kept as ciphertext);
//  - internal buffers: at most one partial record plus one chunk (kTlsChunk) in,
//    and OpenSSL's own record buffers (released while idle);
//  - pending_output() holds what the session produced and the caller has not
//    consumed yet: handshake flights (a few KiB), alerts, and the encryption of
//    what was passed to write() (plain.size() + ~22 bytes per 16 KiB record).
//    The peer cannot make it grow without feeding proportionally (renegotiation
//    is refused), so a caller that stops reading while its send side is blocked
//    bounds it; callers of write() bound what they write (RELP window, HTTP body).
//  - A peer that never finishes the handshake holds those buffers until the
//    caller's idle timeout closes it: apply one.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace logseal::ingest {

// Largest TLS record on the wire (TLS 1.2: 5 + 16384 + 2048).
inline constexpr size_t kTlsRecordMax = 5 + 16384 + 2048;
// feed() and write() hand OpenSSL at most this much at a time, so the memory BIOs
// never hold more than one chunk plus one partial record.
inline constexpr size_t kTlsChunk = 16384;
// SAN entries kept per peer certificate; further ones are ignored (they can only
// widen an identity match, never narrow it).
inline constexpr size_t kPeerSansMax = 64;

struct TlsServerConfig {
  std::string cert_file;  // PEM: the server certificate, then any intermediates
  std::string key_file;   // PEM, unencrypted (the daemon starts unattended)
  // PEM CA certificates that client certificates must chain to. Empty: client
  // certificates are not requested.
  std::string ca_file;
  // Fail the handshake when the client presents no certificate (needs ca_file).
  bool require_client_cert = false;
};

// One per listener, shared by its threads: the SSL_CTX is only read after create().
// TLS 1.2 and 1.3 only, security level 2 or higher (>= 112-bit keys, no SHA-1
// signatures), OpenSSL's default cipher lists with server preference, no
// renegotiation, no compression.
class TlsContext {
 public:
  // Errors name the file and say what is wrong: NotFound / InvalidArgument for an
  // unreadable or unparsable cert, key or CA file, a key that does not match the
  // certificate, or require_client_cert without ca_file.
  static Result<std::shared_ptr<TlsContext>> create(const TlsServerConfig& config);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* native() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// The server side of one connection. Not thread-safe (one connection, one thread);
// not copyable or movable (hold it by unique_ptr).
class TlsSession {
 public:
  explicit TlsSession(std::shared_ptr<TlsContext> ctx);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext from the peer -> plaintext appended to `plain` (may be nothing, e.g.
  // during the handshake). An error is final (every later call returns it):
  // InvalidArgument with OpenSSL's reason for what the peer did, e.g.
  //   "TLS handshake: peer did not present a certificate"
  //   "TLS handshake: certificate verify failed: unable to get local issuer certificate"
  //   "TLS handshake: unsupported protocol"   (TLS 1.1 or older)
  //   "TLS handshake: wrong version number"   (plaintext on the TLS port)
  //   "TLS: decryption failed or bad record mac"   (after the handshake)
  // Internal when OpenSSL ran out of memory. Either way: send pending_output()
  // (the alert), then close.
  // Plaintext decoded before the error is still appended. Bytes after the peer's
  // close_notify are ignored.
  Status feed(std::string_view ciphertext, std::string& plain);

  // Plaintext to the peer, encrypted into pending_output(). FailedPrecondition
  // before the handshake is done; Unavailable after shutdown() or the peer's
  // close_notify; the session's error once it failed.
  Status write(std::string_view plain);

  // Bytes to send now (handshake, alerts, encrypted data). The view is valid until
  // the next non-const call. The caller sends a prefix and calls consume_output(n).
  std::string_view pending_output() const {
    return std::string_view(out_).substr(out_pos_);
  }
  void consume_output(size_t n);

  bool handshake_done() const { return handshake_done_; }
  // The peer sent close_notify: answer with shutdown(), send, close.
  bool peer_closed() const { return peer_closed_; }
  // The error feed() or write() returned, ok while the session is healthy.
  const Status& error() const { return failed_; }

  // After the handshake, the verified client certificate ("" / empty without one):
  // the subject as one RFC 2253 line ("CN=sender1,O=Example,C=DE"; non-ASCII
  // and control bytes escaped, so it is printable ASCII), and the SAN entries
  // ("DNS:sender1.example", "IP:127.0.0.1", "IP:2001:db8::1",
  // "email:ops@example.com", "URI:spiffe://example/sender1"; bytes outside
  // printable ASCII and '\' are written \xHH; other SAN types are left out).
  const std::string& peer_subject() const { return peer_subject_; }
  const std::vector<std::string>& peer_sans() const { return peer_sans_; }
  // "TLSv1.3 TLS_AES_256_GCM_SHA384" after the handshake, "" before; for logs.
  std::string connection_summary() const;

  // Graceful close: queues close_notify in pending_output(). Idempotent; does
  // nothing before the handshake is done or after an error (just close then).
  void shutdown();

 private:
  // Runs the handshake and reads every complete record in the input BIO.
  Status process(std::string& plain);
  // Moves everything OpenSSL wrote into out_.
  void drain_output();
  // Records the failure of an SSL call (SSL_get_error() value) and queues the alert.
  Status fail(int ssl_error);
  void capture_peer();

  std::shared_ptr<TlsContext> ctx_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // owned by ssl_: ciphertext from the peer
  BIO* out_bio_ = nullptr;  // owned by ssl_: ciphertext to the peer
  std::string out_;     // pending output starts at out_pos_
  size_t out_pos_ = 0;
  bool handshake_done_ = false;
  bool peer_closed_ = false;
  bool shutdown_sent_ = false;
  Status failed_;
  std::string peer_subject_;
  std::vector<std::string> peer_sans_;
};

}  // namespace logseal::ingest
