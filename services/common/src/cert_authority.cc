#include "tg/common/cert_authority.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace tg::certs {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Bio = std::unique_ptr<BIO, Free>;

// The last OpenSSL error, for a message ("what: reason").
std::string OpensslError(std::string_view what) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  std::string out(what);
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    out += ": ";
    out += buf;
  }
  return out;
}

bool Fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return false;
}

Key NewKey() { return Key(EVP_EC_gen("P-256")); }

Cert ParseCert(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

Key ParseKey(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

std::string CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return "";
  return BioString(bio.get());
}

std::string KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return "";
  }
  return BioString(bio.get());
}

bool AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, Free> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

// A certificate for `key` named `cn`; self-signed when issuer is null.
Cert MakeCert(std::string_view cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, int days,
              bool is_ca, std::string* error) {
  Cert cert(X509_new());
  std::unique_ptr<BIGNUM, Free> serial(BN_new());
  const std::string name(cn);
  bool ok =
      cert && serial && X509_set_version(cert.get(), 2) == 1 &&
      BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr &&
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400) != nullptr &&
      X509_set_pubkey(cert.get(), key) == 1 &&
      X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1,
                                 0) == 1;
  X509* signer = issuer != nullptr ? issuer : cert.get();
  ok = ok && X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) == 1;
  if (is_ca) {
    ok = ok &&
         AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
         AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign") &&
         AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  } else {
    const std::string san = "DNS:" + name;
    ok = ok && AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE") &&
         AddExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature") &&
         AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth") &&
         AddExtension(cert.get(), signer, NID_subject_alt_name, san.c_str()) &&
         AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash") &&
         AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  }
  ok = ok && X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0;
  if (!ok) {
    Fail(error, OpensslError("cannot build the certificate for " + name));
    return nullptr;
  }
  return cert;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return static_cast<bool>(in) || in.eof();
}

// Writes through a temporary file renamed over `path`, created with `mode`.
bool WriteFileAtomically(const std::string& path, const std::string& data, mode_t mode,
                         std::string* error) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Fail(error, "cannot create " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return Fail(error, "cannot write " + tmp + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);  // whatever the umask
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Fail(error, "cannot write " + tmp + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Fail(error, "cannot rename " + tmp + ": " + std::strerror(errno));
  }
  return true;
}

}  // namespace

std::optional<CertAuthority> CertAuthority::Create(std::string_view name, int days,
                                                   std::string* error) {
  Key key = NewKey();
  if (!key) {
    Fail(error, OpensslError("cannot generate the CA key"));
    return std::nullopt;
  }
  Cert cert = MakeCert(name, key.get(), nullptr, nullptr, days, /*is_ca=*/true, error);
  if (!cert) return std::nullopt;
  CertAuthority ca;
  ca.pem_ = {CertPem(cert.get()), KeyPem(key.get())};
  if (ca.pem_.cert.empty() || ca.pem_.key.empty()) {
    Fail(error, OpensslError("cannot encode the CA"));
    return std::nullopt;
  }
  return ca;
}

std::optional<CertAuthority> CertAuthority::FromPem(CertKeyPem pem, std::string* error) {
  if (!ParseCert(pem.cert)) {
    Fail(error, OpensslError("the CA certificate is not a PEM certificate"));
    return std::nullopt;
  }
  if (!KeyMatchesCertificate(pem.cert, pem.key, error)) return std::nullopt;
  CertAuthority ca;
  ca.pem_ = std::move(pem);
  return ca;
}

std::optional<CertKeyPem> CertAuthority::Issue(std::string_view identity, int days,
                                               std::string* error) const {
  if (!ValidIdentityName(identity)) {
    Fail(error, "invalid identity name '" + std::string(identity) + "' (a DNS label: [a-z0-9-])");
    return std::nullopt;
  }
  Cert ca_cert = ParseCert(pem_.cert);
  Key ca_key = ParseKey(pem_.key);
  Key key = NewKey();
  if (!ca_cert || !ca_key || !key) {
    Fail(error, OpensslError("cannot prepare the key of " + std::string(identity)));
    return std::nullopt;
  }
  Cert cert = MakeCert(identity, key.get(), ca_cert.get(), ca_key.get(), days, false, error);
  if (!cert) return std::nullopt;
  CertKeyPem out{CertPem(cert.get()), KeyPem(key.get())};
  if (out.cert.empty() || out.key.empty()) {
    Fail(error, OpensslError("cannot encode the certificate of " + std::string(identity)));
    return std::nullopt;
  }
  return out;
}

std::optional<CertificateInfo> InspectCertificate(const std::string& cert_pem, std::string* error) {
  Cert cert = ParseCert(cert_pem);
  if (!cert) {
    Fail(error, OpensslError("not a PEM certificate"));
    return std::nullopt;
  }
  CertificateInfo info;
  char cn[256] = {0};
  int n =
      X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn);
  if (n > 0) info.common_name.assign(cn, static_cast<size_t>(n));
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) == 1) info.not_after = timegm(&tm);
  return info;
}

bool VerifyIssuedBy(const std::string& ca_pem, const std::string& cert_pem, std::string* error) {
  Cert ca = ParseCert(ca_pem);
  Cert cert = ParseCert(cert_pem);
  if (!ca) return Fail(error, OpensslError("the CA file holds no PEM certificate"));
  if (!cert) return Fail(error, OpensslError("the certificate file holds no PEM certificate"));
  std::unique_ptr<X509_STORE, Free> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, Free> ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return Fail(error, OpensslError("cannot set up certificate verification"));
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    return Fail(error, std::string("certificate does not verify against the CA: ") +
                           X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  }
  return true;
}

bool KeyMatchesCertificate(const std::string& cert_pem, const std::string& key_pem,
                           std::string* error) {
  Cert cert = ParseCert(cert_pem);
  Key key = ParseKey(key_pem);
  if (!cert) return Fail(error, OpensslError("not a PEM certificate"));
  if (!key) return Fail(error, OpensslError("not a PEM private key"));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return Fail(error, "the private key does not belong to the certificate");
  }
  return true;
}

std::string CaCertFile(const std::string& dir) { return dir + "/ca.pem"; }
std::string CaKeyFile(const std::string& dir) { return dir + "/ca-key.pem"; }
std::string CertFile(const std::string& dir, std::string_view identity) {
  return dir + "/" + std::string(identity) + ".pem";
}
std::string KeyFile(const std::string& dir, std::string_view identity) {
  return dir + "/" + std::string(identity) + "-key.pem";
}

bool ValidIdentityName(std::string_view identity) {
  if (identity.empty() || identity.size() > 63) return false;
  if (identity.front() == '-' || identity.back() == '-') return false;
  for (char c : identity) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  // "ca" would collide with the CA's own files.
  return identity != "ca";
}

bool EnsureCertDir(const CertDirOptions& options, std::vector<std::string>* log,
                   std::string* error) {
  const std::string& dir = options.dir;
  if (dir.empty()) return Fail(error, "no output directory");
  if (options.days < 1 || options.ca_days < 1) return Fail(error, "days must be at least 1");
  for (const auto& id : options.identities) {
    if (!ValidIdentityName(id)) {
      return Fail(error, "invalid identity name '" + id + "' (a DNS label: [a-z0-9-], not 'ca')");
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Fail(error, "cannot create " + dir + ": " + ec.message());
  auto note = [log](std::string line) {
    if (log != nullptr) log->push_back(std::move(line));
  };

  std::optional<CertAuthority> ca;
  bool new_ca = options.new_ca;
  if (!new_ca) {
    CertKeyPem pem;
    const bool have_cert = ReadFile(CaCertFile(dir), &pem.cert);
    const bool have_key = ReadFile(CaKeyFile(dir), &pem.key);
    if (have_cert != have_key) {
      return Fail(error, "found only one of " + CaCertFile(dir) + " and " + CaKeyFile(dir) +
                             " (use --new-ca to replace the CA)");
    }
    if (have_cert) {
      ca = CertAuthority::FromPem(std::move(pem), error);
      if (!ca) return Fail(error, "existing CA in " + dir + " unusable: " + *error);
      note("kept " + CaCertFile(dir));
    } else {
      new_ca = true;
    }
  }
  if (new_ca) {
    ca = CertAuthority::Create("trustgate-internal-ca", options.ca_days, error);
    if (!ca) return false;
    if (!WriteFileAtomically(CaKeyFile(dir), ca->pem().key, 0600, error) ||
        !WriteFileAtomically(CaCertFile(dir), ca->pem().cert, 0644, error)) {
      return false;
    }
    note("wrote " + CaCertFile(dir) + " and " + CaKeyFile(dir));
  }

  const std::time_t now = std::time(nullptr);
  for (const auto& id : options.identities) {
    if (!new_ca && !options.renew) {
      CertKeyPem existing;
      std::string why;
      if (ReadFile(CertFile(dir, id), &existing.cert) &&
          ReadFile(KeyFile(dir, id), &existing.key) &&
          VerifyIssuedBy(ca->pem().cert, existing.cert, &why) &&
          KeyMatchesCertificate(existing.cert, existing.key, &why)) {
        auto info = InspectCertificate(existing.cert, &why);
        const std::time_t keep_until = now + static_cast<std::time_t>(options.days) * 86400 / 3;
        if (info && info->common_name == id && info->not_after > keep_until) {
          note("kept " + CertFile(dir, id));
          continue;
        }
      }
    }
    auto issued = ca->Issue(id, options.days, error);
    if (!issued) return false;
    if (!WriteFileAtomically(KeyFile(dir, id), issued->key, 0600, error) ||
        !WriteFileAtomically(CertFile(dir, id), issued->cert, 0644, error)) {
      return false;
    }
    note("wrote " + CertFile(dir, id) + " and " + KeyFile(dir, id));
  }
  return true;
}

}  // namespace tg::certs
