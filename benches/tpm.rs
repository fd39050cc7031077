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
    // manufactured: EK certificates in NV, as enrolment reads them
    let sw = swtpm::Swtpm::start_manufactured();
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
    // enrolment's TPM work (derive the EK, read its certificate from NV, load the AK) and
    // answering a credential challenge (ActivateCredential with the EK's policy session)
    use hardend::tpm::ek::{self, EkAlgorithm};
    use hardend::tpm::enroll::{self, Challenge};
    let (mut enrol, mut activate) = (Vec::new(), Vec::new());
    let ak_public = ak.tpm_public().expect("ak");
    let ek_public = ek::read(&mut tpm, EkAlgorithm::Rsa2048).expect("ek").public;
    let wdir = dir.path();
    std::fs::write(
        wdir.join("ek.pub"),
        hardend::tpm::public::to_tpm2b(&ek_public).expect("tpm2b"),
    )
    .expect("ek.pub");
    std::fs::write(wdir.join("secret"), b"fleet-secret").expect("secret");
    let name = hex::encode(hardend::tpm::public::name(&ak_public).expect("name"));
    let st = Command::new("tpm2_makecredential")
        .args([
            "-T", "none", "-u", "ek.pub", "-s", "secret", "-n", &name, "-o", "cred",
        ])
        .current_dir(wdir)
        .stdout(Stdio::null())
        .status()
        .expect("tpm2_makecredential");
    assert!(st.success());
    let cred = Challenge::from_tpm2_tools(&std::fs::read(wdir.join("cred")).expect("cred"))
        .expect("challenge");
    for _ in 0..n {
        let t = Instant::now();
        let e = ek::read(&mut tpm, EkAlgorithm::Rsa2048).expect("ek");
        assert!(e.certificate.is_some());
        ak.check(&mut tpm).expect("ak loads");
        enrol.push(t.elapsed());
        let t = Instant::now();
        let secret =
            enroll::activate(&ak.dir, &mut tpm, EkAlgorithm::Rsa2048, &cred).expect("activate");
        assert_eq!(secret, b"fleet-secret");
        activate.push(t.elapsed());
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
    // the same with tpm2-tools, with the restricted AK it made above under its own SRK, and
    // a challenge for that AK's name
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
        "hak.ctx",
    ]);
    tools(&["tpm2_flushcontext", "-t"]);
    tools(&["tpm2_readpublic", "-c", "hak.ctx", "-n", "hak.name"]);
    tools(&["tpm2_flushcontext", "-t"]);
    let tname = hex::encode(std::fs::read(w.join("hak.name")).expect("hak.name"));
    let st = Command::new("tpm2_makecredential")
        .args([
            "-T", "none", "-u", "ek.pub", "-s", "secret", "-n", &tname, "-o", "cred2",
        ])
        .current_dir(w)
        .stdout(Stdio::null())
        .status()
        .expect("tpm2_makecredential");
    assert!(st.success());
    let (mut tenrol, mut tactivate) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        tools(&[
            "tpm2_createek",
            "-c",
            "ek.ctx",
            "-G",
            "rsa",
            "-u",
            "ek2.pub",
        ]);
        tools(&["tpm2_flushcontext", "-t"]);
        tools(&["tpm2_nvread", "0x01c00002", "-o", "ek.der"]);
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
            "hak.ctx",
        ]);
        tools(&["tpm2_flushcontext", "-t"]);
        tenrol.push(t.elapsed());
        let t = Instant::now();
        tools(&["tpm2_startauthsession", "--policy-session", "-S", "s.ctx"]);
        tools(&["tpm2_policysecret", "-S", "s.ctx", "-c", "e"]);
        tools(&[
            "tpm2_activatecredential",
            "-c",
            "hak.ctx",
            "-C",
            "ek.ctx",
            "-i",
            "cred2",
            "-o",
            "secret.out",
            "-P",
            "session:s.ctx",
        ]);
        tools(&["tpm2_flushcontext", "s.ctx"]);
        tools(&["tpm2_flushcontext", "-t"]);
        tactivate.push(t.elapsed());
    }
    assert_eq!(
        std::fs::read(w.join("secret.out")).expect("secret.out"),
        b"fleet-secret"
    );
    let (e, a, te, ta) = (
        median(enrol),
        median(activate),
        median(tenrol),
        median(tactivate),
    );
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
    println!(
        "  enrol  hardend {e:>7.2} ms   tpm2-tools {te:>7.2} ms   ratio {:.1}x (derive the EK, read its NV certificate, load the AK)",
        te / e
    );
    println!(
        "  activate hardend {a:>5.2} ms   tpm2-tools {ta:>7.2} ms   ratio {:.1}x (policy session, ActivateCredential)",
        ta / a
    );
}
