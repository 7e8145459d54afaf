//! Optional TLS and mutual TLS with rustls (ring provider): [`TlsFiles`] names the PEM
//! files, and the server turns them into an acceptor before it serves. The server
//! offers HTTP/2 and HTTP/1.1 by ALPN (gRPC and grpc-web). With a client CA, every client
//! must present a certificate that CA signed; the handshake fails otherwise. The handshake
//! counts against the connection's handshake timeout (`ConnectionLimits`, 10 s by default).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// The PEM files of the server's TLS identity and, for mutual TLS, of the CA that signs
/// client certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by a CA in this file (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{what} {}: {reason}", path.display())]
    File {
        /// Which file it is (`certificate`, `private key`, `client CA`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the configuration (a key that does not match the certificate…).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The client CA could not be turned into a verifier.
    #[error("client CA: {0}")]
    ClientCa(String),
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |reason: String| TlsError::File {
        what,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// The acceptor for `files`.
pub(crate) fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates("certificate", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::File {
        what: "private key",
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in certificates("client CA", path)? {
                roots.add(ca)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| TlsError::ClientCa(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_generated_identity_loads_with_and_without_a_client_ca() {
        let dir = tempfile::tempdir().unwrap();
        let identity = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &identity.cert.pem());
        let key = write(dir.path(), "key.pem", &identity.key_pair.serialize_pem());
        let mut files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: None,
        };
        acceptor(&files).unwrap();
        files.client_ca = Some(cert.clone());
        acceptor(&files).unwrap();
    }

    fn refused(files: TlsFiles) -> TlsError {
        match acceptor(&files) {
            Ok(_) => panic!("{files:?} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn missing_empty_and_mismatched_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &a.cert.pem());
        let other_key = write(dir.path(), "other.pem", &b.key_pair.serialize_pem());
        let empty = write(dir.path(), "empty.pem", "");
        let missing = dir.path().join("missing.pem");

        let err = refused(TlsFiles {
            cert: missing.clone(),
            key: other_key.clone(),
            client_ca: None,
        });
        assert!(err.to_string().starts_with("certificate "), "{err}");
        let err = refused(TlsFiles {
            cert: empty,
            key: other_key.clone(),
            client_ca: None,
        });
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let err = refused(TlsFiles {
            cert: cert.clone(),
            key: missing,
            client_ca: None,
        });
        assert!(err.to_string().starts_with("private key "), "{err}");
        let err = refused(TlsFiles {
            cert,
            key: other_key,
            client_ca: None,
        });
        assert!(matches!(err, TlsError::Config(_)), "{err}");
    }
}
