//! hardend's monotonic counter in the TPM's non-volatile memory: the integrity baseline's
//! generation. A TPM counter only ever goes up — not even its owner can set it back — so a
//! baseline older than the counter (an earlier generation copied back) is recognised, and
//! the counter's existence says, in a place a disk edit cannot reach, that this device's
//! baseline is protected by a TPM-sealed key.
//!
//! The index is an owner-hierarchy counter (`TPM_NT_COUNTER`, 8 bytes, no dictionary-attack
//! lockout) read and incremented with its own authValue, which hardend derives from the
//! sealed MAC key: only who can unseal that key (hardend, root, on this TPM) can move it.
//! Defining or deleting it needs the owner hierarchy's authorization.

use tss_esapi::attributes::NvIndexAttributesBuilder;
use tss_esapi::constants::NvIndexType;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::handles::{NvIndexHandle, NvIndexTpmHandle, ObjectHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::{NvAuth, Provision};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{Auth, NvPublic, NvPublicBuilder};

use super::TpmError;
use super::identity::{Tpm, tpm_err};

/// The baseline generation counter's index (owner range; "HD" 0x44 0x01).
pub const BASELINE_COUNTER: u32 = 0x0148_4401;

/// What the TPM holds at an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// No index defined there.
    Absent,
    /// hardend's counter and its value.
    Value(u64),
}

fn tpm_handle(index: u32) -> Result<NvIndexTpmHandle, TpmError> {
    NvIndexTpmHandle::new(index).map_err(tpm_err("name the NV index"))
}

fn is_absent(e: &tss_esapi::Error) -> bool {
    matches!(e, tss_esapi::Error::Tss2Error(rc) if rc.kind() == Some(Tss2ResponseCodeKind::Handle))
}

/// The attributes hardend defines its counter with (checked when it is found).
fn public(index: u32) -> Result<NvPublic, TpmError> {
    let e = tpm_err("build the NV counter template");
    let attrs = NvIndexAttributesBuilder::new()
        .with_nv_index_type(NvIndexType::Counter)
        .with_auth_read(true)
        .with_auth_write(true)
        .with_no_da(true)
        .build()
        .map_err(&e)?;
    NvPublicBuilder::new()
        .with_nv_index(tpm_handle(index)?)
        .with_index_name_algorithm(HashingAlgorithm::Sha256)
        .with_index_attributes(attrs)
        .with_data_area_size(8)
        .build()
        .map_err(e)
}

fn auth(secret: &[u8]) -> Result<Auth, TpmError> {
    Auth::try_from(secret.to_vec()).map_err(tpm_err("prepare the counter's authorization"))
}

/// The ESYS handle for `index`, `None` when nothing is defined there. The caller closes it.
fn open(tpm: &mut Tpm, index: u32) -> Result<Option<NvIndexHandle>, TpmError> {
    let th = tpm_handle(index)?;
    match tpm
        .ctx
        .execute_without_session(|c| c.tr_from_tpm_public(th.into()))
    {
        Ok(h) => Ok(Some(NvIndexHandle::from(h))),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(tpm_err("look up the NV counter")(e)),
    }
}

fn close(tpm: &mut Tpm, h: NvIndexHandle) {
    let mut o = ObjectHandle::from(h);
    let _ = tpm.ctx.tr_close(&mut o);
}

/// What is defined at an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    Absent,
    /// A counter with the attributes hardend defines.
    Hardends,
    /// Something else (defined by another user of the owner hierarchy).
    Foreign,
}

/// What is defined at `index` (no authorization needed).
pub fn index(tpm: &mut Tpm, index: u32) -> Result<Index, TpmError> {
    let Some(h) = open(tpm, index)? else {
        return Ok(Index::Absent);
    };
    let r = tpm
        .ctx
        .execute_without_session(|c| c.nv_read_public(h))
        .map_err(tpm_err("read the NV index's public area"));
    close(tpm, h);
    let (found, _) = r?;
    Ok(if is_hardends(&found, &public(index)?) {
        Index::Hardends
    } else {
        Index::Foreign
    })
}

/// Whether anything is defined at `index`.
pub fn exists(tpm: &mut Tpm, index: u32) -> Result<bool, TpmError> {
    Ok(self::index(tpm, index)? != Index::Absent)
}

fn is_hardends(found: &NvPublic, want: &NvPublic) -> bool {
    // the TPM's state bits (written, read/write locked) are not what was defined
    const STATE: u32 = (1 << 29) | (1 << 28) | (1 << 11);
    let defined = |p: &NvPublic| u32::try_from(p.attributes()).ok().map(|a| a & !STATE);
    defined(found) == defined(want) && found.data_size() == 8
}

/// The counter at `index` read with `secret` as its authValue. An index whose attributes are
/// not the ones hardend defines (someone else's, or made to be movable by others) is an
/// error, never a value.
pub fn read(tpm: &mut Tpm, index: u32, secret: &[u8]) -> Result<Counter, TpmError> {
    let Some(h) = open(tpm, index)? else {
        return Ok(Counter::Absent);
    };
    let r = (|| {
        let (found, _) = tpm
            .ctx
            .execute_without_session(|c| c.nv_read_public(h))
            .map_err(tpm_err("read the NV counter's public area"))?;
        if !is_hardends(&found, &public(index)?) {
            return Err(TpmError::Format(format!(
                "NV index 0x{index:08x} is not hardend's counter (attributes {:?}, {} bytes)",
                found.attributes(),
                found.data_size()
            )));
        }
        tpm.ctx
            .tr_set_auth(h.into(), auth(secret)?)
            .map_err(tpm_err("set the counter's authorization"))?;
        let data = tpm
            .ctx
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.nv_read(NvAuth::NvIndex(h), h, 8, 0)
            })
            .map_err(tpm_err("read the NV counter"))?;
        let b: [u8; 8] = data
            .value()
            .try_into()
            .map_err(|_| TpmError::Format("the NV counter is not 8 bytes".into()))?;
        Ok(Counter::Value(u64::from_be_bytes(b)))
    })();
    close(tpm, h);
    r
}

/// Defines hardend's counter at `index` with `secret` as its authValue (owner hierarchy,
/// empty owner authorization) and increments it once, so that it has a value: the TPM
/// starts a new counter at the highest value any counter of it ever had, never lower.
pub fn define(tpm: &mut Tpm, index: u32, secret: &[u8]) -> Result<u64, TpmError> {
    let p = public(index)?;
    let a = auth(secret)?;
    let h = tpm
        .ctx
        .execute_with_session(Some(AuthSession::Password), |c| {
            c.nv_define_space(Provision::Owner, Some(a), p)
        })
        .map_err(tpm_err(
            "define the NV counter (needs the owner hierarchy's authorization)",
        ))?;
    close(tpm, h);
    increment(tpm, index, secret)
}

/// Adds one to the counter; returns the new value.
pub fn increment(tpm: &mut Tpm, index: u32, secret: &[u8]) -> Result<u64, TpmError> {
    let h = open(tpm, index)?
        .ok_or_else(|| TpmError::Format(format!("NV index 0x{index:08x} is not defined")))?;
    let r = (|| {
        tpm.ctx
            .tr_set_auth(h.into(), auth(secret)?)
            .map_err(tpm_err("set the counter's authorization"))?;
        tpm.ctx
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.nv_increment(NvAuth::NvIndex(h), h)
            })
            .map_err(tpm_err("increment the NV counter"))
    })();
    close(tpm, h);
    r?;
    match read(tpm, index, secret)? {
        Counter::Value(v) => Ok(v),
        Counter::Absent => Err(TpmError::Format(format!(
            "NV index 0x{index:08x} vanished while it was incremented"
        ))),
    }
}
