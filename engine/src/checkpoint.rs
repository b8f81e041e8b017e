//! Checkpoints: the chain state after the last verified block, and how far
//! into which files it was reached, so that a later run verifies only what
//! came after (blocks appended to the last segment, new segment files).
//!
//! A [`Checkpoint`] holds what the chain rules carry from block to block
//! (chain id, the tip the next block must link to, every sender's next
//! nonce), what the run was asked to check (rules, a digest of the
//! authority set), and for each file behind it the bytes passed and their
//! BLAKE3 digest. Every file but the last was passed whole; the last one
//! up to the end of its last well-formed block, so a block that was torn
//! (still being written) is read again and judged as a full run would.
//!
//! [`Resume::plan`] checks a checkpoint against the chain as it is now and
//! says what is left to verify: the files behind it must hold the same
//! bytes (re-hashed), the ones before the last must not have grown, and the
//! tip block must be where the checkpoint says, with its hash. A state
//! that does not match is refused, naming the file. The state is trusted
//! like the output of the run that wrote it: it is the verifier's own
//! record, not evidence from the chain.

use crate::chain::{ChainState, Parent};
use crate::format::{HEADER_LEN, check_header};
use crate::frame::{Batch, Source};
use crate::hash::{self, Digest};
use crate::input::{InputError, IoMode};
use crate::sig::RuleSet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The checkpoint format's version (the `vigil_checkpoint` field).
pub const CHECKPOINT_VERSION: u32 = 1;

/// Largest checkpoint file read (a million senders take about 90 MB).
pub const MAX_CHECKPOINT_BYTES: u64 = 4 << 30;

/// The chain state after the last verified block (see the module docs).
/// Serialized as JSON; digests and keys are lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_VERSION`].
    pub vigil_checkpoint: u32,
    /// The chain id (`None` before the first well-formed block).
    pub chain_id: Option<String>,
    /// The signature rules the blocks were verified under.
    pub rules: String,
    /// BLAKE3 of the authority keys, sorted, when the proposer check was on.
    pub authorities: Option<String>,
    /// The last well-formed block (`None` before the first).
    pub tip: Option<Tip>,
    /// Blocks verified so far, from the start of the chain.
    pub blocks: u64,
    /// Transactions in those blocks.
    pub transactions: u64,
    /// The files behind the checkpoint, in chain order (see [`FileMark`]).
    pub files: Vec<FileMark>,
    /// BLAKE3 of every file's length (8 bytes, little-endian) and digest,
    /// in order: one digest of all the bytes verified.
    pub digest: String,
    /// Every sender seen, with its next valid nonce (`None`: it used
    /// 2^64 − 1 and no later nonce is valid).
    pub nonces: BTreeMap<String, Option<u64>>,
}

/// The last well-formed block of a [`Checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tip {
    /// Its height.
    pub height: u64,
    /// Its block hash.
    pub hash: String,
    /// Its `timestamp_ms`.
    pub timestamp_ms: u64,
    /// The file holding it.
    pub file: PathBuf,
    /// Its byte offset in that file.
    pub offset: u64,
}

/// How much of one file a [`Checkpoint`] has behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FileMark {
    /// The file, as the run named it.
    pub path: PathBuf,
    /// Bytes passed: the whole file, except for the last file, where it is
    /// the end of its last well-formed block (where a resumed run starts).
    pub length: u64,
    /// BLAKE3 of the file's bytes `0..length`.
    pub digest: String,
}

/// Why a checkpoint cannot be read, written or resumed from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The checkpoint file is not one (or not this version).
    #[error("{}: not a vigil checkpoint: {problem}", path.display())]
    Invalid {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The run is not asked to check what the checkpoint's run checked.
    #[error("the checkpoint was written by a run with {what} {state}, this run has {given}")]
    Options {
        /// Which option (`rules`, `authorities`, `chain id`).
        what: &'static str,
        /// The checkpoint's.
        state: String,
        /// This run's.
        given: String,
    },
    /// A file behind the checkpoint is not as it was.
    #[error("{}: {problem}: it does not match the checkpoint (verify from the start, without --resume)", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
        /// How it differs.
        problem: String,
    },
    /// Reading a chain file failed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The chain's files are not those the checkpoint was written for.
    #[error("{0} (verify from the start, without --resume)")]
    Files(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io { path: path.to_owned(), source }
}

/// BLAKE3 of a set of authority keys, in sorted order (the checkpoint's
/// `authorities`).
pub fn authorities_digest(keys: &HashSet<[u8; 32]>) -> String {
    let mut sorted: Vec<&[u8; 32]> = keys.iter().collect();
    sorted.sort_unstable();
    let mut hasher = blake3::Hasher::new();
    for key in sorted {
        hasher.update(key);
    }
    hasher.finalize().to_hex().to_string()
}

/// BLAKE3 of bytes `0..length` of `path`, as the shards hash spans
/// ([`crate::shard::hash_span`]: mapped and hashed on all cores, or read).
pub fn file_digest(path: &Path, length: u64, io: IoMode) -> Result<String, CheckpointError> {
    crate::shard::hash_span(path, 0, length, io).map(hex::encode).map_err(|e| match e {
        InputError::Changed { .. } => CheckpointError::Changed {
            path: path.to_owned(),
            problem: format!("it holds fewer than the {length} bytes verified"),
        },
        other => CheckpointError::Input(other),
    })
}

fn all_digest(files: &[FileMark]) -> String {
    let mut hasher = blake3::Hasher::new();
    for f in files {
        hasher.update(&f.length.to_le_bytes());
        hasher.update(f.digest.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

fn unhex32(s: &str) -> Option<Digest> {
    hex::decode(s).ok()?.try_into().ok()
}

impl Checkpoint {
    /// Reads a checkpoint file (bounded: [`MAX_CHECKPOINT_BYTES`]).
    pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let invalid = |problem: String| CheckpointError::Invalid { path: path.to_owned(), problem };
        // Looked at before it is opened: opening a FIFO would block.
        if !std::fs::metadata(path).map_err(io_err(path))?.is_file() {
            return Err(invalid("not a regular file".into()));
        }
        let file = File::open(path).map_err(io_err(path))?;
        if !file.metadata().map_err(io_err(path))?.is_file() {
            return Err(invalid("not a regular file".into()));
        }
        let reader = io::BufReader::new(file.take(MAX_CHECKPOINT_BYTES));
        let cp: Checkpoint = serde_json::from_reader(reader).map_err(|e| invalid(e.to_string()))?;
        if cp.vigil_checkpoint != CHECKPOINT_VERSION {
            return Err(invalid(format!("version {}, this vigil reads {CHECKPOINT_VERSION}", cp.vigil_checkpoint)));
        }
        cp.check().map_err(invalid)?;
        Ok(cp)
    }

    /// Fields that must be well-formed whatever the chain.
    fn check(&self) -> Result<(), String> {
        let hex_ok = |what: &str, s: &str| unhex32(s).map(|_| ()).ok_or(format!("{what} {s:?} is not 64 hex digits"));
        if let Some(id) = &self.chain_id {
            hex_ok("chain_id", id)?;
        }
        if let Some(a) = &self.authorities {
            hex_ok("authorities", a)?;
        }
        self.rules.parse::<RuleSet>().map_err(|e| format!("rules: {e}"))?;
        if let Some(tip) = &self.tip {
            hex_ok("tip hash", &tip.hash)?;
            if self.chain_id.is_none() {
                return Err("a tip but no chain_id".into());
            }
        }
        for f in &self.files {
            hex_ok("file digest", &f.digest)?;
        }
        for key in self.nonces.keys() {
            hex_ok("sender", key)?;
        }
        if self.files.is_empty() {
            return Err("no files".into());
        }
        if all_digest(&self.files) != self.digest {
            return Err("its digest does not match its files".into());
        }
        Ok(())
    }

    /// Writes the checkpoint to `path` atomically: a temporary file beside
    /// it, synced, then renamed over it ([`crate::shard`]'s atomic write).
    pub fn write(&self, path: &Path) -> Result<(), CheckpointError> {
        let mut json = serde_json::to_vec(self).map_err(|e| io_err(path)(e.into()))?;
        json.push(b'\n');
        crate::shard::write_atomically(path, &json).map_err(io_err(path))
    }

    /// Where the next block is read: the last file and its offset.
    pub fn position(&self) -> (&Path, u64) {
        let last = self.files.last().expect("checked: a checkpoint names a file");
        (&last.path, last.length)
    }

    /// The chain state it holds.
    pub(crate) fn chain_state(&self) -> ChainState {
        let mut state = ChainState::new(self.chain_id.as_deref().and_then(unhex32));
        state.parent = self.tip.as_ref().map(|t| Parent {
            height: t.height,
            hash: unhex32(&t.hash).expect("checked"),
            timestamp_ms: t.timestamp_ms,
        });
        for (sender, next) in &self.nonces {
            state.set_next_nonce(unhex32(sender).expect("checked"), *next);
        }
        state
    }
}

/// What [`Resume::plan`] found left to verify.
#[derive(Debug)]
#[non_exhaustive]
pub struct Resume {
    /// Bytes `start..end` of the checkpoint's last file (as named now),
    /// when it grew; then every later file whole.
    pub sources: Vec<ResumeSource>,
    /// New bytes in all.
    pub new_bytes: u64,
}

/// One piece of [`Resume::sources`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ResumeSource {
    /// Bytes `start..end` of a file.
    Part(PathBuf, u64, u64),
    /// A whole file.
    File(PathBuf),
}

impl ResumeSource {
    /// As a frame source.
    pub fn source(&self) -> Source<'_> {
        match self {
            ResumeSource::Part(path, start, end) => Source::Part(path, *start, *end),
            ResumeSource::File(path) => Source::File(path),
        }
    }
}

impl Resume {
    /// Checks `cp` against the chain's files as they are now (`files`, in
    /// chain order, named as this run names them) and what this run checks;
    /// returns what is left to verify. The files behind the checkpoint are
    /// re-hashed.
    pub fn plan(
        cp: &Checkpoint,
        files: &[PathBuf],
        rules: RuleSet,
        authorities: Option<&HashSet<[u8; 32]>>,
        chain_id: Option<&Digest>,
        io: IoMode,
    ) -> Result<Resume, CheckpointError> {
        if cp.rules != rules.to_string() {
            return Err(CheckpointError::Options { what: "rules", state: cp.rules.clone(), given: rules.to_string() });
        }
        let given = authorities.map(authorities_digest);
        if cp.authorities != given {
            let show =
                |a: &Option<String>| a.as_ref().map_or("no --authorities".into(), |d| format!("authority set {d}"));
            return Err(CheckpointError::Options {
                what: "authorities",
                state: show(&cp.authorities),
                given: show(&given),
            });
        }
        if let (Some(pinned), Some(state)) = (chain_id, &cp.chain_id)
            && hex::encode(pinned) != *state
        {
            return Err(CheckpointError::Options {
                what: "chain id",
                state: state.clone(),
                given: hex::encode(pinned),
            });
        }
        for (i, (mark, path)) in cp.files.iter().zip(files).enumerate() {
            if mark.path.file_name() != path.file_name() {
                return Err(CheckpointError::Files(format!(
                    "file {} of the chain is {}, the checkpoint's is {}",
                    i + 1,
                    path.display(),
                    mark.path.display()
                )));
            }
        }
        if let Some(missing) = cp.files.get(files.len()) {
            return Err(CheckpointError::Files(format!(
                "{} is not among the chain's files (the checkpoint covers {} files, the chain given has {})",
                missing.path.display(),
                cp.files.len(),
                files.len()
            )));
        }
        let last = cp.files.len() - 1;
        let mut sources = Vec::new();
        let mut new_bytes = 0;
        for (i, (mark, path)) in cp.files.iter().zip(files).enumerate() {
            let size = std::fs::metadata(path).map_err(io_err(path))?.len();
            let changed = |problem: String| CheckpointError::Changed { path: path.clone(), problem };
            if size < mark.length {
                return Err(changed(format!("it holds {size} bytes, fewer than the {} verified", mark.length)));
            }
            if i < last && size != mark.length {
                return Err(changed(format!(
                    "it grew from {} to {size} bytes, but a later file was verified after it",
                    mark.length
                )));
            }
            if file_digest(path, mark.length, io)? != mark.digest {
                return Err(changed(format!("its first {} bytes are not those verified", mark.length)));
            }
            if i == last {
                sources.push(ResumeSource::Part(path.clone(), mark.length, size));
                new_bytes += size - mark.length;
            }
        }
        if let Some(tip) = &cp.tip {
            check_tip(tip, cp, files)?;
        }
        for path in &files[cp.files.len()..] {
            new_bytes += std::fs::metadata(path).map_err(io_err(path))?.len();
            sources.push(ResumeSource::File(path.clone()));
        }
        Ok(Resume { sources, new_bytes })
    }
}

/// The tip block is where the checkpoint says, with its height, hash and
/// timestamp.
fn check_tip(tip: &Tip, cp: &Checkpoint, files: &[PathBuf]) -> Result<(), CheckpointError> {
    let i = cp.files.iter().rposition(|f| f.path == tip.file).ok_or_else(|| CheckpointError::Invalid {
        path: tip.file.clone(),
        problem: "the tip's file is not among the checkpoint's files".into(),
    })?;
    let path = &files[i];
    let mismatch = |problem: String| CheckpointError::Changed { path: path.clone(), problem };
    if tip.offset.checked_add(HEADER_LEN as u64).is_none_or(|end| end > cp.files[i].length) {
        return Err(mismatch(format!("the tip block @ {} is past the bytes verified", tip.offset)));
    }
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut head = [0u8; HEADER_LEN];
    file.seek(io::SeekFrom::Start(tip.offset)).and_then(|_| file.read_exact(&mut head)).map_err(io_err(path))?;
    let header = check_header(&head, cp.files[i].length - tip.offset)
        .map_err(|e| mismatch(format!("no block header @ {} ({e})", tip.offset)))?;
    let hash = hex::encode(hash::block_hash(header));
    if hash != tip.hash || header.height() != tip.height || header.timestamp_ms() != tip.timestamp_ms {
        return Err(mismatch(format!(
            "the block @ {} is not the checkpoint's tip (height {}, hash {})",
            tip.offset, tip.height, tip.hash
        )));
    }
    Ok(())
}

/// How far a run has got through its files, kept batch by batch to make
/// checkpoints of.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    /// Files passed whole, with digests once computed.
    finished: Vec<(Arc<Path>, u64, Option<String>)>,
    /// The file being read: its name, the end of its last well-formed
    /// block, and the end of the bytes accounted for.
    current: Option<(Arc<Path>, u64, u64)>,
    /// The last well-formed block: its file and offset.
    tip_at: Option<(Arc<Path>, u64)>,
    /// Blocks and transactions before the run (from a checkpoint).
    pub(crate) base_blocks: u64,
    pub(crate) base_transactions: u64,
    /// The last file's digest at its last checkpoint, to skip re-hashing.
    current_digest: Option<(u64, String)>,
}

impl Marks {
    /// Marks continuing a checkpoint, its files named as `files` name them.
    pub(crate) fn resumed(cp: &Checkpoint, files: &[PathBuf]) -> Marks {
        let n = cp.files.len();
        let named: Vec<Arc<Path>> = files[..n].iter().map(|p| Arc::from(p.as_path())).collect();
        let last = &cp.files[n - 1];
        Marks {
            finished: cp.files[..n - 1]
                .iter()
                .zip(&named)
                .map(|(f, path)| (path.clone(), f.length, Some(f.digest.clone())))
                .collect(),
            current: Some((named[n - 1].clone(), last.length, last.length)),
            tip_at: cp.tip.as_ref().and_then(|t| {
                let i = cp.files.iter().rposition(|f| f.path == t.file)?;
                Some((named[i].clone(), t.offset))
            }),
            base_blocks: cp.blocks,
            base_transactions: cp.transactions,
            current_digest: Some((last.length, last.digest.clone())),
        }
    }

    /// The file being read, the end of its last well-formed block and of
    /// the bytes accounted for.
    pub(crate) fn position(&self) -> Option<(Arc<Path>, u64, u64)> {
        self.current.clone()
    }

    /// The file of the last well-formed block.
    pub(crate) fn tip_file(&self) -> Option<Arc<Path>> {
        self.tip_at.as_ref().map(|(f, _)| f.clone())
    }

    /// Takes in a batch whose blocks the chain rules have applied.
    pub(crate) fn advance(&mut self, batch: &Batch<'_>) {
        match &mut self.current {
            Some((path, ..)) if *path == batch.file => {}
            current => {
                if let Some((path, _, consumed)) = current.take() {
                    self.finished.push((path, consumed, None));
                }
                *current = Some((batch.file.clone(), batch.start, batch.start));
                self.current_digest = None;
            }
        }
        let (_, verified, consumed) = self.current.as_mut().expect("set above");
        if let Some(last) = batch.blocks.last() {
            *verified = last.offset + last.len as u64;
            self.tip_at = Some((batch.file.clone(), last.offset));
        }
        *consumed = batch.start + batch.bytes;
    }

    /// A checkpoint of `chain` after `blocks` and `transactions` (this
    /// run's), digesting what has not been yet.
    pub(crate) fn checkpoint(
        &mut self,
        chain: &ChainState,
        rules: RuleSet,
        authorities: Option<&HashSet<[u8; 32]>>,
        blocks: u64,
        transactions: u64,
        io: IoMode,
    ) -> Result<Checkpoint, CheckpointError> {
        let Some((current, verified, _)) = self.current.clone() else {
            return Err(CheckpointError::Files("nothing was read: no checkpoint to write".into()));
        };
        let mut files = Vec::with_capacity(self.finished.len() + 1);
        for (path, length, digest) in &mut self.finished {
            let digest = match digest {
                Some(d) => d.clone(),
                None => digest.insert(file_digest(path, *length, io)?).clone(),
            };
            files.push(FileMark { path: path.to_path_buf(), length: *length, digest });
        }
        let digest = match &self.current_digest {
            Some((length, d)) if *length == verified => d.clone(),
            _ => file_digest(&current, verified, io)?,
        };
        self.current_digest = Some((verified, digest.clone()));
        files.push(FileMark { path: current.to_path_buf(), length: verified, digest });
        let tip = match (chain.parent, &self.tip_at) {
            (Some(p), Some((file, offset))) => Some(Tip {
                height: p.height,
                hash: hex::encode(p.hash),
                timestamp_ms: p.timestamp_ms,
                file: file.to_path_buf(),
                offset: *offset,
            }),
            _ => None,
        };
        Ok(Checkpoint {
            vigil_checkpoint: CHECKPOINT_VERSION,
            chain_id: chain.chain_id.map(hex::encode),
            rules: rules.to_string(),
            authorities: authorities.map(authorities_digest),
            tip,
            blocks: self.base_blocks + blocks,
            transactions: self.base_transactions + transactions,
            digest: all_digest(&files),
            files,
            nonces: chain.nonces().map(|(k, v)| (hex::encode(k), v)).collect(),
        })
    }
}
