//! Debian version order (Debian Policy 5.6.12, dpkg's `verrevcmp`): `[epoch:]upstream[-revision]`;
//! the epoch compares as a number; upstream and revision alternate non-digit parts (compared
//! character by character, `~` before everything — even the end — letters before other
//! characters) and digit parts (compared as numbers). Matching a vulnerability feed on the
//! wrong order is the classic false positive (`~` releases, binNMUs, epochs), so this is
//! tested against libapt on generated pairs and against dpkg itself.

use std::cmp::Ordering;

/// A version split as dpkg splits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version<'a> {
    pub epoch: u64,
    pub upstream: &'a str,
    pub revision: &'a str,
}

impl<'a> Version<'a> {
    /// Splits `v` (never fails: an epoch that is not a number counts as 0, as a version dpkg
    /// would refuse is not ours to reject here).
    pub fn parse(v: &'a str) -> Version<'a> {
        let v = v.trim();
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
                (e.parse().unwrap_or(u64::MAX), r)
            }
            _ => (0, v),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        Version {
            epoch,
            upstream,
            revision,
        }
    }
}

/// dpkg's weight of one character of a non-digit part (`0` for the end).
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // non-digit part
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        // digit part: leading zeros skipped, then the longer number is bigger
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// How version `a` compares with `b` in dpkg's order.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (x, y) = (Version::parse(a), Version::parse(b));
    x.epoch
        .cmp(&y.epoch)
        .then_with(|| verrevcmp(x.upstream, y.upstream))
        .then_with(|| verrevcmp(x.revision, y.revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orders_that_cause_false_positives() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0+deb12u1", Less),
            ("1.0~", "1.0~~", Greater),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
            ("1:1.0", "2.0", Greater),
            ("1.0-1", "1.0-1+b1", Less),
            ("1.0", "1.0-0", Equal),
            ("1.0a", "1.0+", Less),
            ("01", "1", Equal),
            ("3.0.19-1~deb12u2", "3.0.19-1", Less),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
