#pragma once

// The private certificate authority of the internal gRPC identities
// (docs/OPERATIONS.md, "Internal identities"): one self-signed CA, and for each
// identity (tg-edge, tg-config, …, tg-operator) an ECDSA P-256 certificate
// whose common name and only DNS subject alternative name are the identity,
// valid for both TLS server and client authentication. OpenSSL's EVP/X509
// APIs only; no openssl command line.

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tg::certs {

// A certificate and its private key, PEM (the key unencrypted PKCS#8).
struct CertKeyPem {
  std::string cert;
  std::string key;
};

class CertAuthority {
 public:
  // A new CA: ECDSA P-256, CN `name`, valid `days` days.
  static std::optional<CertAuthority> Create(std::string_view name, int days, std::string* error);
  // An existing CA from its certificate and key.
  static std::optional<CertAuthority> FromPem(CertKeyPem pem, std::string* error);

  // A new key and a certificate for `identity`, signed by this CA, valid
  // `days` days (from an hour ago, for clocks slightly behind).
  std::optional<CertKeyPem> Issue(std::string_view identity, int days, std::string* error) const;

  const CertKeyPem& pem() const { return pem_; }

 private:
  CertAuthority() = default;
  CertKeyPem pem_;
};

// What a loader needs to know about a PEM certificate.
struct CertificateInfo {
  std::string common_name;
  std::time_t not_after = 0;
};
std::optional<CertificateInfo> InspectCertificate(const std::string& cert_pem, std::string* error);

// True when `cert_pem` chains to `ca_pem` and is valid now (signature,
// validity period, CA constraints); false with *error saying why otherwise.
bool VerifyIssuedBy(const std::string& ca_pem, const std::string& cert_pem, std::string* error);

// True when `key_pem` is the private key of `cert_pem`.
bool KeyMatchesCertificate(const std::string& cert_pem, const std::string& key_pem,
                           std::string* error);

// The files of a certificate directory: ca.pem, ca-key.pem, and
// <identity>.pem / <identity>-key.pem for each identity.
std::string CaCertFile(const std::string& dir);
std::string CaKeyFile(const std::string& dir);
std::string CertFile(const std::string& dir, std::string_view identity);
std::string KeyFile(const std::string& dir, std::string_view identity);

struct CertDirOptions {
  std::string dir;                      // created (mode 0755) when missing
  std::vector<std::string> identities;  // certificates to have in `dir`
  int days = 365;                       // validity of newly issued identity certificates
  int ca_days = 3650;                   // validity of a newly created CA
  bool new_ca = false;                  // replace an existing CA (and so every certificate)
  bool renew = false;                   // reissue identity certificates that are still good
};

// Makes `dir` hold a CA and a certificate per identity, idempotently: an
// existing CA is kept (unless new_ca), and an existing identity certificate
// is kept while it chains to the CA, matches its key and has more than a
// third of `days` left (unless renew). Keys are written with mode 0600,
// every file atomically (temporary file, then rename). `*log` gets one line
// per file written or kept. False with *error on any failure.
bool EnsureCertDir(const CertDirOptions& options, std::vector<std::string>* log,
                   std::string* error);

// A valid identity name: 1-63 of [a-z0-9-], not starting or ending with '-'
// (a DNS label, since it is also the certificate's DNS name).
bool ValidIdentityName(std::string_view identity);

}  // namespace tg::certs
