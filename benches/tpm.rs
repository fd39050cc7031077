//! Sign and quote latency against swtpm, hardend's library next to the same work done with
//! tpm2-tools, in one run (median ms; printed, not asserted). The work per operation is the
//! same on both sides: derive the ECC storage key, load the key blob, sign or quote, flush.
//! Run with `scripts/bench`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hardend::tpm::identity::{IdentityStore, Tpm};

#[path = "../tests/it/common/swtpm.rs"]
mod swtpm;

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    // the tests' swtpm helper: killed on drop, on every exit path
    let sw = swtpm::Swtpm::start();
    let tcti = sw.tcti();
    let n = 30;

    let store = IdentityStore::new(dir.path().join("id"));
    let ak = IdentityStore::attestation(dir.path().join("id"));
    let mut tpm = Tpm::connect(&tcti).expect("connect");
    store.create(&mut tpm).expect("create");
    let (mut sign, mut quote) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        store.sign_statement(&mut tpm, b"nonce").expect("sign");
        sign.push(t.elapsed());
        let t = Instant::now();
        hardend::tpm::quote::quote(&ak, &mut tpm, b"nonce", &[0, 1, 2, 3, 4, 5, 6, 7])
            .expect("quote");
        quote.push(t.elapsed());
    }
    drop(tpm);

    let w = dir.path();
    let tools = |args: &[&str]| {
        let st = Command::new(args[0])
            .args(&args[1..])
            .current_dir(w)
            .env("TPM2TOOLS_TCTI", &tcti)
            .env("TSS2_LOG", "all+none")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("tpm2-tools");
        assert!(st.success(), "{args:?}");
    };
    std::fs::write(w.join("msg"), b"nonce").expect("msg");
    tools(&[
        "tpm2_createprimary",
        "-C",
        "o",
        "-G",
        "ecc256",
        "-c",
        "srk.ctx",
    ]);
    tools(&[
        "tpm2_create",
        "-C",
        "srk.ctx",
        "-G",
        "ecc256:ecdsa-sha256",
        "-u",
        "k.pub",
        "-r",
        "k.priv",
    ]);
    // no resource manager: every tool run leaves its transients loaded and swtpm has only
    // three object slots, so transients are flushed between tool runs (saved contexts
    // reload), which is how tpm2-tools must be driven without tpm2-abrmd
    tools(&["tpm2_flushcontext", "-t"]);
    tools(&[
        "tpm2_createprimary",
        "-C",
        "o",
        "-G",
        "ecc256",
        "-c",
        "srk.ctx",
    ]);
    tools(&[
        "tpm2_create",
        "-C",
        "srk.ctx",
        "-G",
        "ecc256:ecdsa-sha256:null",
        "-a",
        "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
        "-u",
        "ak.pub",
        "-r",
        "ak.priv",
    ]);
    tools(&["tpm2_flushcontext", "-t"]);
    let (mut tsign, mut tquote) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        tools(&[
            "tpm2_createprimary",
            "-C",
            "o",
            "-G",
            "ecc256",
            "-c",
            "srk.ctx",
        ]);
        tools(&["tpm2_flushcontext", "-t"]);
        tools(&[
            "tpm2_load",
            "-C",
            "srk.ctx",
            "-u",
            "k.pub",
            "-r",
            "k.priv",
            "-c",
            "k.ctx",
        ]);
        tools(&["tpm2_flushcontext", "-t"]);
        tools(&[
            "tpm2_sign",
            "-c",
            "k.ctx",
            "-g",
            "sha256",
            "-o",
            "sig",
            "msg",
        ]);
        tools(&["tpm2_flushcontext", "-t"]);
        tsign.push(t.elapsed());
        let t = Instant::now();
        tools(&[
            "tpm2_createprimary",
            "-C",
            "o",
            "-G",
            "ecc256",
            "-c",
            "srk.ctx",
        ]);
        tools(&["tpm2_flushcontext", "-t"]);
        tools(&[
            "tpm2_load",
            "-C",
            "srk.ctx",
            "-u",
            "ak.pub",
            "-r",
            "ak.priv",
            "-c",
            "ak.ctx",
        ]);
        tools(&["tpm2_flushcontext", "-t"]);
        tools(&[
            "tpm2_quote",
            "-c",
            "ak.ctx",
            "-l",
            "sha256:0,1,2,3,4,5,6,7",
            "-q",
            "6e6f6e6365",
            "-m",
            "q.msg",
            "-s",
            "q.sig",
            "-o",
            "q.pcrs",
        ]);
        tools(&["tpm2_flushcontext", "-t"]);
        tquote.push(t.elapsed());
    }
    let (s, q, ts, tq) = (median(sign), median(quote), median(tsign), median(tquote));
    println!(
        "TPM operations against swtpm ({n} runs, median, each: derive SRK, load key, operate, flush)"
    );
    println!(
        "  sign   hardend {s:>7.2} ms   tpm2-tools {ts:>7.2} ms   ratio {:.1}x",
        ts / s
    );
    println!(
        "  quote  hardend {q:>7.2} ms   tpm2-tools {tq:>7.2} ms   ratio {:.1}x (hardend also reads the PCRs)",
        tq / q
    );
}
