//! `hardenctl verity format | verify | dump`: offline, on files or block devices; options
//! named as veritysetup's.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::{CliError, Exit, Output, columns};
use crate::verity::tree::{self, Formatted};
use crate::verity::{
    HashAlg, VerityError, VerityParams, format_uuid, parse_salt, parse_uuid, salt_string,
};

/// Tree parameters as given on the command line.
#[derive(clap::Args, Debug, Clone)]
pub struct TreeArgs {
    /// Hash algorithm: sha1, sha256, sha512.
    #[arg(
        long = "hash",
        id = "hash_alg",
        value_name = "ALG",
        default_value = "sha256"
    )]
    pub hash_alg: String,
    #[arg(long, default_value_t = 4096)]
    pub data_block_size: u32,
    #[arg(long, default_value_t = 4096)]
    pub hash_block_size: u32,
    /// Hash format: 1 (normal) or 0 (ChromeOS).
    #[arg(long = "format", default_value_t = 1)]
    pub format: u32,
    /// Salt in hex, or "-" for none (default: 32 random bytes).
    #[arg(long)]
    pub salt: Option<String>,
    /// UUID for the superblock (default: random).
    #[arg(long)]
    pub uuid: Option<String>,
    /// Do not write/read a superblock.
    #[arg(long)]
    pub no_superblock: bool,
    /// Byte offset of the hash area in the hash file (data and hash in one file).
    #[arg(long, default_value_t = 0)]
    pub hash_offset: u64,
    /// Number of data blocks (default: the data file's size / data block size).
    #[arg(long)]
    pub data_blocks: Option<u64>,
}

impl From<VerityError> for CliError {
    fn from(e: VerityError) -> Self {
        CliError::Daemon(e.to_string())
    }
}

fn random_bytes(n: usize) -> Result<Vec<u8>, CliError> {
    let mut v = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut v))
        .map_err(|e| CliError::Daemon(format!("/dev/urandom: {e}")))?;
    Ok(v)
}

fn device_size(path: &Path) -> Result<u64, CliError> {
    let f = std::fs::File::open(path)
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    Ok(tree::size_of(&f, path)?)
}

impl TreeArgs {
    /// Parameters for formatting `data`.
    pub fn params(&self, data: &Path) -> Result<VerityParams, CliError> {
        let hash_alg = HashAlg::from_name(&self.hash_alg).ok_or_else(|| {
            CliError::Usage(format!(
                "unknown hash {:?} (sha1, sha256, sha512)",
                self.hash_alg
            ))
        })?;
        let data_blocks = match self.data_blocks {
            Some(n) => n,
            None => device_size(data)? / u64::from(self.data_block_size.max(1)),
        };
        let salt = match &self.salt {
            Some(s) => parse_salt(s)?,
            None => random_bytes(32)?,
        };
        let uuid = match &self.uuid {
            Some(u) => parse_uuid(u)?,
            None => {
                let mut u: [u8; 16] = random_bytes(16)?
                    .try_into()
                    .map_err(|_| CliError::Usage("uuid".into()))?;
                u[6] = (u[6] & 0x0f) | 0x40; // version 4
                u[8] = (u[8] & 0x3f) | 0x80; // RFC 4122 variant
                u
            }
        };
        let p = VerityParams {
            hash_type: self.format,
            hash_alg,
            data_block_size: self.data_block_size,
            hash_block_size: self.hash_block_size,
            data_blocks,
            salt,
            uuid,
            hash_offset: self.hash_offset,
            superblock: !self.no_superblock,
        };
        p.validate()?;
        Ok(p)
    }
}

/// Progress on stderr, only on a terminal and for images worth waiting for.
fn progress(total_blocks: u64, block_size: u32) -> impl Fn(u64) + Sync {
    let show =
        std::io::stderr().is_terminal() && total_blocks * u64::from(block_size) > (256 << 20);
    let done = AtomicU64::new(0);
    let last = AtomicU64::new(0);
    move |n| {
        if !show {
            return;
        }
        let d = done.fetch_add(n, Ordering::Relaxed) + n;
        let pct = d * 100 / total_blocks.max(1);
        if last.swap(pct, Ordering::Relaxed) != pct {
            eprint!("\rhashing {pct:>3}%");
            if pct == 100 {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    }
}

#[derive(Serialize)]
struct FormatDoc<'a> {
    #[serde(flatten)]
    params: &'a VerityParams,
    root_hash: String,
    hash_blocks: u64,
    hash_device_size: u64,
}

fn params_rows(p: &VerityParams) -> Vec<Vec<String>> {
    vec![
        vec![
            "UUID:".into(),
            if p.superblock {
                format_uuid(&p.uuid)
            } else {
                String::new()
            },
        ],
        vec!["Hash type:".into(), p.hash_type.to_string()],
        vec!["Data blocks:".into(), p.data_blocks.to_string()],
        vec!["Data block size:".into(), p.data_block_size.to_string()],
        vec!["Hash block size:".into(), p.hash_block_size.to_string()],
        vec!["Hash algorithm:".into(), p.hash_alg.name().into()],
        vec!["Salt:".into(), salt_string(&p.salt)],
    ]
}

pub fn format(out: &Output, args: &TreeArgs, data: &Path, hash: &Path) -> Result<Exit, CliError> {
    let p = args.params(data)?;
    let f: Formatted = tree::format(&p, data, hash, &progress(p.data_blocks, p.data_block_size))?;
    if out.json {
        out.json(&FormatDoc {
            params: &p,
            root_hash: hex::encode(&f.root_hash),
            hash_blocks: f.hash_blocks,
            hash_device_size: f.hash_device_size,
        });
    } else {
        println!("VERITY header information for {}", hash.display());
        let mut rows = params_rows(&p);
        rows.insert(3, vec!["Hash blocks:".into(), f.hash_blocks.to_string()]);
        rows.push(vec!["Root hash:".into(), hex::encode(&f.root_hash)]);
        rows.push(vec![
            "Hash device size:".into(),
            format!("{} [bytes]", f.hash_device_size),
        ]);
        print!("{}", columns(&rows));
    }
    Ok(Exit::Ok)
}

fn params_for_existing(
    args: &TreeArgs,
    data: &Path,
    hash: &Path,
) -> Result<VerityParams, CliError> {
    if args.no_superblock {
        let mut a = args.clone();
        if a.salt.is_none() {
            a.salt = Some("-".into());
        }
        a.uuid = Some("00000000-0000-0000-0000-000000000000".into());
        return a.params(data);
    }
    Ok(tree::read_superblock(hash, args.hash_offset)?)
}

pub fn verify(
    out: &Output,
    args: &TreeArgs,
    data: &Path,
    hash: &Path,
    root: &str,
) -> Result<Exit, CliError> {
    let root_bytes =
        hex::decode(root).map_err(|e| CliError::Usage(format!("root hash {root:?}: {e}")))?;
    let p = params_for_existing(args, data, hash)?;
    if root_bytes.len() != p.hash_alg.digest_size() {
        return Err(CliError::Usage(format!(
            "root hash has {} bytes; {} digests have {}",
            root_bytes.len(),
            p.hash_alg.name(),
            p.hash_alg.digest_size()
        )));
    }
    let result = tree::verify(
        &p,
        data,
        hash,
        &root_bytes,
        &progress(p.data_blocks, p.data_block_size),
    );
    match result {
        Ok(()) => {
            if out.json {
                out.json(&serde_json::json!({ "verified": true, "root_hash": root, "corruption": null, "message": null }));
            } else {
                println!("verified: {} matches root hash {root}", data.display());
            }
            Ok(Exit::Ok)
        }
        Err(VerityError::Corrupt(c)) => {
            if out.json {
                out.json(&serde_json::json!({ "verified": false, "root_hash": root, "corruption": c, "message": c.to_string() }));
            } else {
                println!("{}: {c}", out.paint("verification failed", Some(false)));
            }
            Ok(Exit::Bad)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn dump(out: &Output, hash: &Path, hash_offset: u64) -> Result<Exit, CliError> {
    let p = tree::read_superblock(hash, hash_offset)?;
    if out.json {
        out.json(&p);
    } else {
        println!("VERITY header information for {}", hash.display());
        let mut rows = params_rows(&p);
        rows.push(vec!["Hash offset:".into(), p.hash_offset.to_string()]);
        print!("{}", columns(&rows));
    }
    Ok(Exit::Ok)
}

/// Options of `verity open`.
#[derive(clap::Args, Debug, Clone)]
pub struct OpenArgs {
    /// What the kernel does on a corrupted block.
    #[arg(long, value_enum)]
    pub on_corruption: Option<crate::verity::dm::OnCorruption>,
    #[arg(long)]
    pub ignore_zero_blocks: bool,
    #[arg(long)]
    pub check_at_most_once: bool,
    /// Kernel keyring description of the root hash signature (root_hash_sig_key_desc).
    #[arg(long)]
    pub root_hash_sig_key_desc: Option<String>,
}

pub fn open(
    out: &Output,
    tree_args: &TreeArgs,
    o: &OpenArgs,
    name: &str,
    data: &Path,
    hash: &Path,
    root: &str,
) -> Result<Exit, CliError> {
    use crate::verity::dm::{Control, TableOptions, table};
    let p = params_for_existing(tree_args, data, hash)?;
    let opts = TableOptions {
        on_corruption: o.on_corruption,
        ignore_zero_blocks: o.ignore_zero_blocks,
        check_at_most_once: o.check_at_most_once,
        root_hash_sig_key_desc: o.root_hash_sig_key_desc.clone(),
    };
    let t = table(
        &p,
        &data.display().to_string(),
        &hash.display().to_string(),
        root,
        &opts,
    )?;
    // cryptsetup's naming, so that tools recognise the device
    let uuid = format!("CRYPT-VERITY-{}-{name}", hex::encode(p.uuid));
    let ctl = Control::open()?;
    let dev = ctl.open_verity(name, &uuid, &t)?;
    // a device nobody can reach by its name is not left behind
    Control::ensure_node(name, dev).inspect_err(|_| {
        let _ = ctl.remove(name);
    })?;
    let (major, minor) = (
        libc::major(dev as libc::dev_t),
        libc::minor(dev as libc::dev_t),
    );
    if out.json {
        out.json(&serde_json::json!({ "name": name, "device": format!("/dev/mapper/{name}"), "major": major, "minor": minor, "table": t.params }));
    } else {
        println!("/dev/mapper/{name} ({major}:{minor}) opened read-only");
    }
    Ok(Exit::Ok)
}

pub fn close(out: &Output, name: &str) -> Result<Exit, CliError> {
    crate::verity::dm::Control::open()?.remove(name)?;
    if out.json {
        out.json(&serde_json::json!({ "name": name, "closed": true }));
    } else {
        println!("{name}: closed");
    }
    Ok(Exit::Ok)
}

pub fn status(out: &Output, name: &str) -> Result<Exit, CliError> {
    use crate::verity::dm::{Control, VerityStatus, parse_status};
    let c = Control::open()?;
    let status = c.table_status(name, false)?;
    let table = c.table_status(name, true)?;
    let t = status
        .first()
        .filter(|t| t.target_type == "verity")
        .ok_or_else(|| CliError::Daemon(format!("{name} is not a verity device")))?;
    let st = parse_status(&t.params);
    let root = table
        .first()
        .and_then(|t| t.params.split_whitespace().nth(8))
        .unwrap_or("")
        .to_string();
    if out.json {
        out.json(&serde_json::json!({
            "name": name,
            "status": match &st {
                VerityStatus::Verified => "verified",
                VerityStatus::Corrupted => "corrupted",
                VerityStatus::Unknown(_) => "unknown",
            },
            "raw": t.params,
            "root_hash": root,
        }));
    } else {
        let word = match &st {
            VerityStatus::Verified => out.paint("verified (V)", Some(true)),
            VerityStatus::Corrupted => out.paint("CORRUPTED (C)", Some(false)),
            VerityStatus::Unknown(s) => out.paint(&format!("unknown ({s})"), None),
        };
        println!("{name}: {word}, root hash {root}");
    }
    Ok(if st == VerityStatus::Verified {
        Exit::Ok
    } else {
        Exit::Bad
    })
}
