//! TLS with client certificates, and which stations a certificate may write for.
//!
//! The collector presents its own certificate and requires every client to present one signed by
//! the configured client CA (rustls through tonic; the handshake fails without one). For each call,
//! the names in the client's leaf certificate (DNS and URI subject alternative names, then the
//! subject common name) are looked up in the identity table, which maps a certificate identity to
//! the station ids it may write. A batch for any other station is refused with `PERMISSION_DENIED`
//! ([`CollectorError::NotPermitted`]); an identity missing from the table may write nothing.
//!
//! Without TLS every caller is [`Caller::Local`]: plain text is served on loopback only, unless the
//! operator explicitly allows it elsewhere.
//!
//! [`write_dev_certs`] makes a throwaway CA, a collector certificate and one certificate per
//! station, for a first try and for tests; production certificates come from the operator's PKI.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
};

use cablewatch_proto::StationId;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::{CollectorError, Result};

/// Suffix of the DNS names [`write_dev_certs`] gives station certificates: `<station>.<suffix>`.
pub const DEV_STATION_DOMAIN: &str = "station.cablewatch.invalid";

/// Server certificate, key, client CA and the identity table.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    /// PEM certificate chain the collector presents.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// PEM CA certificate(s) client certificates must chain to.
    pub client_ca: PathBuf,
    /// Certificate identity (a DNS or URI subject alternative name, or the subject common name) to
    /// the station ids it may write.
    pub identities: BTreeMap<String, BTreeSet<StationId>>,
}

fn tls_error(path: &Path, reason: impl Into<String>) -> CollectorError {
    CollectorError::Tls {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| tls_error(path, e.to_string()))
}

fn certificates(path: &Path, pem: &[u8]) -> Result<usize> {
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        cert.map_err(|e| tls_error(path, format!("not a PEM certificate: {e}")))?;
        n += 1;
    }
    if n == 0 {
        return Err(tls_error(path, "holds no PEM certificate"));
    }
    Ok(n)
}

impl TlsSettings {
    /// Reads and checks the files and builds tonic's server configuration. Errors name the file.
    pub fn server_config(&self) -> Result<ServerTlsConfig> {
        let cert = read(&self.cert)?;
        certificates(&self.cert, &cert)?;
        let key = read(&self.key)?;
        PrivateKeyDer::from_pem_slice(&key)
            .map_err(|e| tls_error(&self.key, format!("holds no PEM private key: {e}")))?;
        let ca = read(&self.client_ca)?;
        certificates(&self.client_ca, &ca)?;
        if self.identities.is_empty() {
            return Err(tls_error(
                &self.client_ca,
                "no certificate identities are configured ([tls.identities]): no station could write",
            ));
        }
        Ok(ServerTlsConfig::new()
            .identity(Identity::from_pem(cert, key))
            .client_ca_root(Certificate::from_pem(ca)))
    }

    /// The identity table as used per call.
    pub fn authorizer(&self) -> Authorizer {
        Authorizer {
            identities: self
                .identities
                .iter()
                .map(|(name, stations)| (name.clone(), Arc::new(stations.clone())))
                .collect(),
        }
    }
}

/// Parses `NAME=STATION[,STATION...]` (the `--tls-identity` flag).
pub fn parse_identity(text: &str) -> std::result::Result<(String, BTreeSet<StationId>), String> {
    let (name, stations) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=STATION[,STATION...]"))?;
    let stations = stations
        .split(',')
        .map(|s| StationId::try_new(s.trim()).map_err(|e| format!("{text:?}: station {s:?}: {e}")))
        .collect::<std::result::Result<BTreeSet<_>, _>>()?;
    if name.trim().is_empty() {
        return Err(format!("{text:?}: empty certificate identity"));
    }
    Ok((name.trim().to_owned(), stations))
}

/// Who is calling, as far as writing for stations goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Plain text (loopback or explicitly allowed): may write for any station.
    Local,
    /// A client certificate: may write for `stations` only.
    Certified {
        /// The certificate name the stations were granted to (or its first name when none was).
        identity: String,
        /// Stations it may write for.
        stations: Arc<BTreeSet<StationId>>,
    },
}

impl Caller {
    /// Ok when this caller may write batches of `station`.
    pub fn check(&self, station: &StationId) -> Result<()> {
        match self {
            Self::Local => Ok(()),
            Self::Certified { stations, .. } if stations.contains(station) => Ok(()),
            Self::Certified { identity, .. } => Err(CollectorError::NotPermitted {
                identity: identity.clone(),
                station: station.to_string(),
            }),
        }
    }
}

/// Maps client certificates to [`Caller`]s.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    identities: BTreeMap<String, Arc<BTreeSet<StationId>>>,
}

impl Authorizer {
    /// The caller presenting `certs` (leaf first). Stations granted to several names of one
    /// certificate are joined.
    pub fn caller(&self, certs: Option<&[CertificateDer<'static>]>) -> Caller {
        let names = certs
            .and_then(|c| c.first())
            .map(|leaf| certificate_names(leaf))
            .unwrap_or_default();
        let granted: Vec<_> = names
            .iter()
            .filter_map(|n| self.identities.get(n).map(|s| (n, s)))
            .collect();
        let identity = granted
            .first()
            .map(|(n, _)| (*n).clone())
            .or_else(|| names.first().cloned())
            .unwrap_or_else(|| "<certificate without names>".into());
        let stations = match granted.as_slice() {
            [(_, only)] => Arc::clone(only),
            many => Arc::new(many.iter().flat_map(|(_, s)| s.iter().cloned()).collect()),
        };
        Caller::Certified { identity, stations }
    }
}

/// DNS and URI subject alternative names, then subject common names, of a DER certificate.
pub fn certificate_names(der: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};
    let Ok((_, cert)) = X509Certificate::from_der(der.as_ref()) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) | GeneralName::URI(n) => names.push((*n).to_owned()),
                _ => {}
            }
        }
    }
    names.extend(
        cert.subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_owned)),
    );
    names
}

/// Files written by [`write_dev_certs`].
#[derive(Debug, Clone)]
pub struct DevCerts {
    /// The CA certificate (clients trust it for the collector; the collector for clients).
    pub ca: PathBuf,
    /// The collector's certificate and key.
    pub collector: (PathBuf, PathBuf),
    /// Per station: its DNS identity, certificate and key.
    pub stations: BTreeMap<StationId, (String, PathBuf, PathBuf)>,
    /// A `[tls]` configuration section using them.
    pub config: PathBuf,
}

fn write_file(path: &Path, contents: &str, private: bool) -> Result<()> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(|e| tls_error(path, e.to_string()))
}

/// Writes a new CA (`ca.pem`; its key is not kept), a collector certificate for `hosts` (names or
/// IP addresses; `localhost`, 127.0.0.1 and ::1 always) and one client certificate per station
/// (DNS name `<station>.station.cablewatch.invalid`, common name the station id) into `dir`, and
/// `tls.toml`, a `[tls]` section binding each station's certificate to that station alone.
pub fn write_dev_certs(dir: &Path, stations: &[StationId], hosts: &[String]) -> Result<DevCerts> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let gen_err = |e: rcgen::Error| tls_error(dir, format!("generating certificates: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| tls_error(dir, e.to_string()))?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cablewatch development CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(gen_err)?).map_err(gen_err)?;

    let leaf = |names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| -> Result<(String, String)> {
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut params = CertificateParams::new(names).map_err(gen_err)?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &ca).map_err(gen_err)?;
        Ok((cert.pem(), key.serialize_pem()))
    };

    let ca_path = dir.join("ca.pem");
    write_file(&ca_path, &ca.pem(), false)?;
    let mut server_names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    for h in hosts {
        if !server_names.contains(h) {
            server_names.push(h.clone());
        }
    }
    let (cert, key) = leaf(
        server_names,
        "cablewatch collector",
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let collector = (dir.join("collector.pem"), dir.join("collector.key"));
    write_file(&collector.0, &cert, false)?;
    write_file(&collector.1, &key, true)?;

    let mut config = String::from(
        "# Written by `cablewatch-collector dev-certs`: development certificates, not for production.\n\
         [tls]\ncert = \"collector.pem\"\nkey = \"collector.key\"\nclient_ca = \"ca.pem\"\n\n\
         # Certificate identity = the station ids it may write.\n[tls.identities]\n",
    );
    let mut out = BTreeMap::new();
    for station in stations {
        let name = format!("{station}.{DEV_STATION_DOMAIN}");
        let (cert, key) = leaf(
            vec![name.clone()],
            station.as_str(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let paths = (
            dir.join(format!("{station}.pem")),
            dir.join(format!("{station}.key")),
        );
        write_file(&paths.0, &cert, false)?;
        write_file(&paths.1, &key, true)?;
        config.push_str(&format!("\"{name}\" = [\"{station}\"]\n"));
        out.insert(station.clone(), (name, paths.0, paths.1));
    }
    let config_path = dir.join("tls.toml");
    write_file(&config_path, &config, false)?;
    Ok(DevCerts {
        ca: ca_path,
        collector,
        stations: out,
        config: config_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn station(s: &str) -> StationId {
        StationId::try_new(s).unwrap()
    }

    #[test]
    fn dev_certificates_carry_the_station_identity() {
        let dir = tempfile::tempdir().unwrap();
        let certs = write_dev_certs(dir.path(), &[station("bude"), station("bilbao")], &[]).unwrap();
        let (name, cert, _) = &certs.stations[&station("bude")];
        let der = CertificateDer::from_pem_file(cert).unwrap();
        let names = certificate_names(&der);
        assert_eq!(names, vec![name.clone(), "bude".to_owned()]);

        let mut identities = BTreeMap::new();
        identities.insert(name.clone(), BTreeSet::from([station("bude")]));
        let settings = TlsSettings {
            cert: certs.collector.0.clone(),
            key: certs.collector.1.clone(),
            client_ca: certs.ca.clone(),
            identities,
        };
        settings.server_config().unwrap();
        let caller = settings.authorizer().caller(Some(&[der]));
        caller.check(&station("bude")).unwrap();
        let err = caller.check(&station("bilbao")).unwrap_err().to_string();
        assert!(err.contains("bilbao") && err.contains(name), "{err}");

        // bilbao's certificate is valid but not in the table: it may write nothing.
        let (_, other, _) = &certs.stations[&station("bilbao")];
        let der = CertificateDer::from_pem_file(other).unwrap();
        let caller = settings.authorizer().caller(Some(&[der]));
        assert!(caller.check(&station("bilbao")).is_err());
        assert!(caller.check(&station("bude")).is_err());
        assert_eq!(Caller::Local.check(&station("bilbao")).ok(), Some(()));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&certs.collector.1)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "private keys are readable by the owner only");
        }
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let certs = write_dev_certs(dir.path(), &[station("bude")], &[]).unwrap();
        let mut settings = TlsSettings {
            cert: certs.collector.0.clone(),
            key: certs.ca.clone(),
            client_ca: certs.ca.clone(),
            identities: BTreeMap::from([("x".to_owned(), BTreeSet::from([station("bude")]))]),
        };
        let err = settings.server_config().unwrap_err().to_string();
        assert!(err.contains("ca.pem") && err.contains("private key"), "{err}");
        settings.key = certs.collector.1.clone();
        settings.client_ca = dir.path().join("missing.pem");
        let err = settings.server_config().unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
        settings.client_ca = certs.collector.1.clone();
        let err = settings.server_config().unwrap_err().to_string();
        assert!(
            err.contains("collector.key") && err.contains("certificate"),
            "{err}"
        );
    }

    #[test]
    fn identity_flags_parse() {
        let (name, stations) = parse_identity("bude.example=bude, bilbao").unwrap();
        assert_eq!(name, "bude.example");
        assert_eq!(stations, BTreeSet::from([station("bude"), station("bilbao")]));
        assert!(parse_identity("bude").unwrap_err().contains("NAME=STATION"));
        assert!(parse_identity("x=../etc").is_err());
    }
}
