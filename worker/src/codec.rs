//! The payload codec: every payload a lakegate worker or client sends to Temporal is encrypted
//! with AES-256-GCM before it leaves the process, so a history as the server stores it holds no
//! input, result or signal in clear.
//!
//! An encrypted payload is Temporal's usual envelope (the one the Go and Python SDK samples use):
//! metadata `encoding: binary/encrypted` and `encryption-key-id: <id>`, data = 12-byte nonce then
//! the ciphertext of the whole original payload (its metadata too) with the GCM tag. The key id is
//! also the associated data, so a payload cannot be passed off as encrypted under another key.
//!
//! Keys come as lines `<key id> <base64 of 32 bytes>`; the first line is the current key (it
//! encrypts), every line decrypts, which is how a key is rotated: put the new key first, keep the
//! old ones until no open run or retained history needs them. Payloads without the encrypted
//! encoding pass through untouched: the Web UI's signal form and a `temporal` CLI run without
//! `--codec-endpoint` send plain JSON, and histories recorded before the codec replay as they are.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload as AeadPayload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use futures::FutureExt;
use futures::future::BoxFuture;
use prost::Message;
use temporalio_common::data_converters::{
    DataConverter, DefaultFailureConverter, PayloadCodec, PayloadConversionError, PayloadConverter,
    SerializationContextData,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;

/// The metadata key every SDK reads a payload's encoding from.
pub const ENCODING_KEY: &str = "encoding";
/// The encoding of an encrypted payload.
pub const ENCRYPTED_ENCODING: &str = "binary/encrypted";
/// The metadata key naming the key a payload was encrypted with.
pub const KEY_ID_KEY: &str = "encryption-key-id";
/// The key file `lakegate dev` writes in its data directory, and that client commands pick up from
/// there when no key is configured.
pub const DEV_KEY_FILE: &str = "codec.keys";
/// Environment variable holding the keys themselves, in the key file's format (lines, or entries
/// separated by `;`), for a secret injected as an environment variable.
pub const KEYS_ENV: &str = "LAKEGATE_CODEC_KEYS";

const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("no payload keys given")]
    NoKeys,
    #[error("key line {line}: expected `<key id> <base64 of 32 bytes>`")]
    BadLine { line: usize },
    #[error("key {id:?}: not base64 of exactly 32 bytes")]
    BadKey { id: String },
    #[error("key id {id:?} appears twice")]
    DuplicateId { id: String },
    #[error("payload encrypted with key {id:?}, which is not among the configured keys")]
    UnknownKey { id: String },
    #[error("encrypted payload has no key id")]
    MissingKeyId,
    #[error("encrypted payload does not decrypt with key {id:?} (wrong key or altered data)")]
    Decrypt { id: String },
    #[error("encryption failed")]
    Encrypt,
    #[error("decrypted payload is not a Temporal payload: {0}")]
    NotAPayload(#[from] prost::DecodeError),
    #[error("reading key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path}: {source}")]
    InFile {
        path: PathBuf,
        source: Box<CodecError>,
    },
}

/// A set of AES-256 keys, the first of which encrypts.
#[derive(Clone)]
pub struct PayloadKeys {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
}

// Never prints key material, only the ids.
impl std::fmt::Debug for PayloadKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("PayloadKeys")
            .field("current", &self.current)
            .field("ids", &ids)
            .finish()
    }
}

impl PayloadKeys {
    /// Parses `<key id> <base64 key>` entries, one a line or separated by `;`; blank lines and
    /// lines starting with `#` (comments) are skipped. The first entry is the current key.
    pub fn parse(text: &str) -> Result<Self, CodecError> {
        let mut current = None;
        let mut keys = HashMap::new();
        let entries = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim_start().starts_with('#'))
            .flat_map(|(n, line)| line.split(';').map(move |entry| (n, entry.trim())));
        for (line, entry) in entries {
            if entry.is_empty() {
                continue;
            }
            let mut parts = entry.split_whitespace();
            let (Some(id), Some(key), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(CodecError::BadLine { line: line + 1 });
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key)
                .ok()
                .filter(|b| b.len() == KEY_LEN)
                .ok_or_else(|| CodecError::BadKey { id: id.to_owned() })?;
            let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes));
            if keys.insert(id.to_owned(), cipher).is_some() {
                return Err(CodecError::DuplicateId { id: id.to_owned() });
            }
            current.get_or_insert_with(|| id.to_owned());
        }
        Ok(Self {
            current: current.ok_or(CodecError::NoKeys)?,
            keys,
        })
    }

    pub fn from_file(path: &Path) -> Result<Self, CodecError> {
        let text = std::fs::read_to_string(path).map_err(|source| CodecError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| CodecError::InFile {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    /// The id of the key new payloads are encrypted with.
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// A key file entry for a fresh random key.
    pub fn generate_entry(id: &str) -> String {
        let key = Aes256Gcm::generate_key(OsRng);
        format!(
            "{id} {}",
            base64::engine::general_purpose::STANDARD.encode(key)
        )
    }

    /// Writes a key file with one fresh key to `path` unless a file is already there; readable
    /// by its owner only.
    pub fn ensure_file(path: &Path, id: &str) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(e),
        };
        writeln!(
            file,
            "# lakegate payload keys: `<key id> <base64 key>` a line; the first encrypts.\n{}",
            Self::generate_entry(id)
        )
    }

    pub fn encrypt(&self, payload: &Payload) -> Result<Payload, CodecError> {
        let cipher = &self.keys[&self.current];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                AeadPayload {
                    msg: &payload.encode_to_vec(),
                    aad: self.current.as_bytes(),
                },
            )
            .map_err(|_| CodecError::Encrypt)?;
        let mut data = Vec::with_capacity(NONCE_LEN + sealed.len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&sealed);
        Ok(Payload {
            metadata: HashMap::from([
                (
                    ENCODING_KEY.to_owned(),
                    ENCRYPTED_ENCODING.as_bytes().to_vec(),
                ),
                (KEY_ID_KEY.to_owned(), self.current.as_bytes().to_vec()),
            ]),
            data,
            external_payloads: Vec::new(),
        })
    }

    /// The original payload of an encrypted one; any other payload is returned as it is.
    pub fn decrypt(&self, payload: Payload) -> Result<Payload, CodecError> {
        if !is_encrypted(&payload) {
            return Ok(payload);
        }
        let id = payload
            .metadata
            .get(KEY_ID_KEY)
            .map(|id| String::from_utf8_lossy(id).into_owned())
            .ok_or(CodecError::MissingKeyId)?;
        let cipher = self
            .keys
            .get(&id)
            .ok_or_else(|| CodecError::UnknownKey { id: id.clone() })?;
        if payload.data.len() < NONCE_LEN {
            return Err(CodecError::Decrypt { id });
        }
        let (nonce, sealed) = payload.data.split_at(NONCE_LEN);
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                AeadPayload {
                    msg: sealed,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| CodecError::Decrypt { id })?;
        Ok(Payload::decode(plain.as_slice())?)
    }
}

pub fn is_encrypted(payload: &Payload) -> bool {
    payload.metadata.get(ENCODING_KEY).map(Vec::as_slice) == Some(ENCRYPTED_ENCODING.as_bytes())
}

/// The SDK codec over [`PayloadKeys`]: cheap to clone, shared by a client and its worker.
#[derive(Debug, Clone)]
pub struct EncryptionCodec {
    keys: Arc<PayloadKeys>,
}

impl EncryptionCodec {
    pub fn new(keys: PayloadKeys) -> Self {
        Self {
            keys: Arc::new(keys),
        }
    }

    pub fn keys(&self) -> &PayloadKeys {
        &self.keys
    }

    pub fn encode_all(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        payloads.iter().map(|p| self.keys.encrypt(p)).collect()
    }

    pub fn decode_all(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        payloads.into_iter().map(|p| self.keys.decrypt(p)).collect()
    }

    /// The SDK's JSON payload conversion with this codec in front. Failure messages and stack
    /// traces move into the failure's encoded attributes, so they are encrypted too (the server
    /// then shows "Encoded failure"; the codec server decodes them for the Web UI).
    pub fn data_converter(&self) -> DataConverter {
        DataConverter::new(
            PayloadConverter::default(),
            DefaultFailureConverter::new(true),
            self.clone(),
        )
    }
}

fn conversion_error(e: CodecError) -> PayloadConversionError {
    PayloadConversionError::EncodingError(Box::new(e))
}

impl PayloadCodec for EncryptionCodec {
    fn encode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let result = self.encode_all(payloads).map_err(conversion_error);
        async move { result }.boxed()
    }

    fn decode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let result = self.decode_all(payloads).map_err(conversion_error);
        async move { result }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Payload {
        Payload {
            metadata: HashMap::from([(ENCODING_KEY.to_owned(), b"json/plain".to_vec())]),
            data: text.as_bytes().to_vec(),
            external_payloads: Vec::new(),
        }
    }

    #[test]
    fn a_payload_round_trips_and_its_text_is_gone() {
        let keys = PayloadKeys::parse(&PayloadKeys::generate_entry("k1")).unwrap();
        let plain = json(r#"{"key":"landing/x/measurement_Moore338.csv"}"#);
        let sealed = keys.encrypt(&plain).unwrap();
        assert!(is_encrypted(&sealed));
        assert_eq!(sealed.metadata[KEY_ID_KEY], b"k1");
        let text = format!("{sealed:?}");
        assert!(!text.contains("Moore338") && !text.contains("json/plain"));
        assert_eq!(keys.decrypt(sealed).unwrap(), plain);
    }

    #[test]
    fn rotation_encrypts_with_the_first_key_and_decrypts_with_any() {
        let old = PayloadKeys::generate_entry("old");
        let new = PayloadKeys::generate_entry("new");
        let before = PayloadKeys::parse(&old).unwrap();
        let after = PayloadKeys::parse(&format!("# rotated\n{new}\n\n{old}\n")).unwrap();
        assert_eq!(after.current_id(), "new");
        let from_before = before.encrypt(&json("1")).unwrap();
        assert_eq!(after.decrypt(from_before).unwrap(), json("1"));
        let from_after = after.encrypt(&json("2")).unwrap();
        assert_eq!(from_after.metadata[KEY_ID_KEY], b"new");
        assert!(matches!(
            before.decrypt(from_after),
            Err(CodecError::UnknownKey { id }) if id == "new"
        ));
        // The environment variable's form: entries separated by `;`.
        let env = PayloadKeys::parse(&format!("{new}; {old}")).unwrap();
        assert_eq!(env.current_id(), "new");
    }

    #[test]
    fn plain_payloads_pass_through_and_tampering_is_caught() {
        let keys = PayloadKeys::parse(&PayloadKeys::generate_entry("k")).unwrap();
        assert_eq!(keys.decrypt(json("{}")).unwrap(), json("{}"));
        let mut sealed = keys.encrypt(&json("{}")).unwrap();
        *sealed.data.last_mut().unwrap() ^= 1;
        assert!(matches!(
            keys.decrypt(sealed),
            Err(CodecError::Decrypt { .. })
        ));
        // Relabelled with another configured key id: the associated data no longer matches.
        let two = PayloadKeys::parse(&format!(
            "{}\n{}",
            PayloadKeys::generate_entry("a"),
            PayloadKeys::generate_entry("b")
        ))
        .unwrap();
        let mut relabelled = two.encrypt(&json("{}")).unwrap();
        relabelled
            .metadata
            .insert(KEY_ID_KEY.to_owned(), b"b".to_vec());
        assert!(matches!(
            two.decrypt(relabelled),
            Err(CodecError::Decrypt { .. })
        ));
    }

    #[test]
    fn bad_key_files_are_named_without_their_keys() {
        assert!(matches!(
            PayloadKeys::parse("# only\n"),
            Err(CodecError::NoKeys)
        ));
        assert!(matches!(
            PayloadKeys::parse("k1"),
            Err(CodecError::BadLine { line: 1 })
        ));
        let short = PayloadKeys::parse("k1 c2VjcmV0").unwrap_err().to_string();
        assert!(
            short.contains("k1") && !short.contains("c2VjcmV0"),
            "{short}"
        );
        let entry = PayloadKeys::generate_entry("k1");
        assert!(matches!(
            PayloadKeys::parse(&format!("{entry}\n{entry}")),
            Err(CodecError::DuplicateId { .. })
        ));
        let debug = format!("{:?}", PayloadKeys::parse(&entry).unwrap());
        assert!(!debug.contains(entry.split(' ').nth(1).unwrap()), "{debug}");
    }

    #[test]
    fn a_generated_key_file_is_private_and_not_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEV_KEY_FILE);
        PayloadKeys::ensure_file(&path, "local").unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        PayloadKeys::ensure_file(&path, "local").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        assert_eq!(PayloadKeys::from_file(&path).unwrap().current_id(), "local");
    }
}
