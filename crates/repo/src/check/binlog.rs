//! The MySQL/MariaDB binlog archive (FORMAT §10.4): from the listing, every name is a
//! piece, each server's pieces follow each other without a hole inside a file and from
//! file to file; reading data also opens each piece (authentication tag, the name it
//! holds, its length).

use std::collections::BTreeMap;

use super::{describe, CheckReport, Findings, Sample};
use crate::error::{RepoError, Result};
use crate::mysql_binlog::{binlog_reach, check_name, sort_pieces, BinlogPiece};
use crate::repository::{parallel_map, Repository};

pub(super) fn check(
    repo: &Repository,
    sample: &Sample,
    findings: &mut Findings,
    report: &mut CheckReport,
) -> Result<()> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for object in repo.storage().list("binlog")? {
        report.binlog_pieces += 1;
        match object.name.split('/').collect::<Vec<_>>()[..] {
            ["binlog", server, _, _] if check_name("server", server).is_ok() => names
                .entry(server.to_string())
                .or_default()
                .push(object.name),
            _ => findings.add(&object.name, "not an archived binlog piece's name"),
        }
    }
    let mut servers: BTreeMap<String, Vec<BinlogPiece>> = BTreeMap::new();
    for (server, names) in names {
        let pieces = repo.list_binlog_names(&server, &names);
        let parsed: std::collections::HashSet<String> =
            pieces.iter().map(|p| p.object_name(&server)).collect();
        for name in names.iter().filter(|n| !parsed.contains(*n)) {
            findings.add(name, "not an archived binlog piece's name");
        }
        servers.insert(server, pieces);
    }
    for (server, pieces) in &mut servers {
        sort_pieces(pieces);
        let Some(first) = pieces.first() else {
            continue;
        };
        let Some(reach) = binlog_reach(pieces, &first.file, 0) else {
            let object = first.object_name(server);
            findings.add(
                &object,
                "the archive of this file does not start at its first byte",
            );
            continue;
        };
        if let Some(gap) = &reach.gap {
            let (file, end) = reach.files.last().expect("a reach holds its first file");
            let object = format!("binlog/{server}/{file}");
            findings.add(
                &object,
                format!(
                    "the archive stops at byte {end} and goes on later: {gap} is missing, so \
                     point-in-time recovery cannot cross it"
                ),
            );
        }
    }
    let all: Vec<(String, BinlogPiece)> = servers
        .iter()
        .flat_map(|(s, pieces)| pieces.iter().map(move |p| (s.clone(), p.clone())))
        .collect();
    let to_read = sample.choose(all, |(s, p)| p.object_name(s).into_bytes());
    report.binlog_pieces_read = to_read.len();
    let results = parallel_map(&to_read, 2, |(server, piece)| {
        match repo.fetch_binlog(server, piece) {
            Ok(Some(_)) => Ok(None),
            Ok(None) => Ok(Some("is missing (deleted while verifying?)".to_string())),
            Err(RepoError::Storage(e)) if !e.is_damage() => Err(RepoError::Storage(e)),
            Err(e) => Ok(Some(describe(&e))),
        }
    })?;
    for ((server, piece), result) in to_read.iter().zip(results) {
        if let Some(detail) = result {
            findings.add(piece.object_name(server), detail);
        }
    }
    Ok(())
}
