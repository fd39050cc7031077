//! Build-time syscall tables: for x86_64 and aarch64, every syscall sorted by name and by
//! number, and every group of `groups_table.rs` flattened into its syscall numbers. The
//! wrapper builds a filter at every service start; with these tables that is arithmetic on
//! numbers instead of a thousand name lookups.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

#[allow(dead_code)] // the build script uses the data, not every field
mod data {
    include!("src/profile/groups_table.rs");
}

mod fixups {
    include!("src/profile/arch_fixups.rs");
}

fn expand(group: &str, table: &BTreeMap<&'static str, i64>, out: &mut BTreeSet<i64>, depth: usize) {
    assert!(depth < 10, "group nesting too deep at {group}");
    let g = data::GROUPS
        .iter()
        .find(|g| g.name == group)
        .unwrap_or_else(|| panic!("unknown group {group} in the table"));
    for m in g.members {
        if m.starts_with('@') {
            expand(m, table, out, depth + 1);
        } else if let Some(nr) = table.get(m) {
            out.insert(*nr);
        }
    }
}

fn emit(out: &mut String, arch: &str, all: Vec<(&'static str, i64)>) {
    let by_name: BTreeMap<&'static str, i64> = all.iter().copied().collect();
    let mut by_nr: Vec<(i64, &'static str)> = all.iter().map(|(n, nr)| (*nr, *n)).collect();
    by_nr.sort_unstable();
    by_nr.dedup_by_key(|(nr, _)| *nr);
    let _ = writeln!(out, "pub static {arch}_BY_NAME: &[(&str, i64)] = &[");
    for (n, nr) in &by_name {
        let _ = writeln!(out, "    ({n:?}, {nr}),");
    }
    let _ = writeln!(out, "];");
    let _ = writeln!(out, "pub static {arch}_BY_NR: &[(i64, &str)] = &[");
    for (nr, n) in &by_nr {
        let _ = writeln!(out, "    ({nr}, {n:?}),");
    }
    let _ = writeln!(out, "];");
    let mut groups: Vec<&str> = data::GROUPS
        .iter()
        .map(|g| g.name)
        .filter(|n| *n != "@known")
        .collect();
    groups.sort_unstable();
    let _ = writeln!(out, "pub static {arch}_GROUPS: &[(&str, &[i64])] = &[");
    for g in groups {
        let mut nrs = BTreeSet::new();
        expand(g, &by_name, &mut nrs, 0);
        let list: Vec<String> = nrs.iter().map(i64::to_string).collect();
        let _ = writeln!(out, "    ({g:?}, &[{}]),", list.join(", "));
    }
    let _ = writeln!(out, "];");
}

fn main() {
    println!("cargo:rerun-if-changed=src/profile/groups_table.rs");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/profile/arch_fixups.rs");
    let mut out = String::new();
    emit(
        &mut out,
        "X86_64",
        syscalls::x86_64::Sysno::iter()
            .map(|s| (s.name(), i64::from(s.id())))
            .collect(),
    );
    emit(
        &mut out,
        "AARCH64",
        syscalls::aarch64::Sysno::iter()
            .filter_map(|s| fixups::aarch64_entry(s.name(), i64::from(s.id())))
            .collect(),
    );
    let dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(format!("{dir}/syscall_tables.rs"), out).expect("write the tables");
}
