//! Planning a roster import: which stored guardian each row of the file is, and what
//! importing the row would change. The caller looks the guardians up (`lookups` says by
//! what), hands them in, and writes the plan.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::member::{MemberProfile, RawProfile};
use super::roster_csv::{Column, Roster, Row};
use super::{DomainError, EmailAddress, FieldError};

/// A guardian on the roster, as an import matches and compares it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredGuardian {
    pub id: String,
    /// The profile as stored.
    pub profile: MemberProfile,
    /// Every stored address, case-folded: what a row's first address is matched against.
    pub email_keys: Vec<String>,
    pub list_ids: Vec<String>,
}

/// What a file names its guardians by, for the caller to look up before planning.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Every non-empty `external_id` cell.
    pub external_ids: Vec<String>,
    /// Each row's first address, case-folded.
    pub email_keys: Vec<String>,
}

pub fn lookups(roster: &Roster) -> Lookups {
    Lookups {
        external_ids: roster
            .rows
            .iter()
            .filter_map(|row| roster.cell(row, &Column::ExternalId))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect(),
        email_keys: roster.rows.iter().filter_map(|row| first_email_key(roster, row)).collect(),
    }
}

/// The first non-empty address cell of the row, case-folded, when it is an address: a row
/// without an `external_id` is the guardian who has it.
fn first_email_key(roster: &Roster, row: &Row) -> Option<String> {
    (0..4)
        .filter_map(|i| roster.cell(row, &Column::Email(i)))
        .find(|v| !v.trim().is_empty())
        .and_then(|v| EmailAddress::parse(v).ok())
        .map(|e| e.key())
}

/// What importing one row does.
#[derive(Debug, PartialEq)]
pub enum Plan<'a> {
    Create(MemberProfile),
    /// The guardian as stored (its profile is the one before) and the profile to write.
    Update {
        guardian: &'a StoredGuardian,
        profile: MemberProfile,
    },
    /// The profile and the memberships are as the row says already.
    Unchanged,
}

#[derive(Debug, PartialEq)]
pub struct PlannedRow<'a> {
    pub line: u64,
    pub plan: Plan<'a>,
    /// The list names of its `lists` cell.
    pub lists: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

#[derive(Debug)]
pub struct ImportPlan<'a> {
    /// The rows without errors, in file order.
    pub rows: Vec<PlannedRow<'a>>,
    /// Lists named in the file that do not exist yet and that a planned row goes in, sorted.
    pub new_lists: Vec<String>,
    /// Every error of the file, by line; their rows are not in `rows`.
    pub errors: Vec<FieldError>,
}

impl ImportPlan<'_> {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for row in &self.rows {
            match row.plan {
                Plan::Create(_) => counts.created += 1,
                Plan::Update { .. } => counts.updated += 1,
                Plan::Unchanged => counts.unchanged += 1,
            }
        }
        counts
    }
}

/// The row's profile: columns in the file replace stored values (an empty cell clears);
/// columns the file does not have keep what is stored.
fn merged_profile(roster: &Roster, row: &Row, stored: Option<&MemberProfile>) -> Result<MemberProfile, DomainError> {
    let text = |column: Column, old: Option<&Option<String>>| -> Option<String> {
        match roster.cell(row, &column) {
            Some(value) => Some(value.to_string()),
            None => old.cloned().flatten(),
        }
    };
    let stored_name = stored.map(|b| Some(b.name.clone()));
    let name = text(Column::Name, stored_name.as_ref());
    let name_kana = text(Column::NameKana, stored.map(|b| &b.name_kana));
    let student_name = text(Column::StudentName, stored.map(|b| &b.student_name));
    let relation = text(Column::Relation, stored.map(|b| &b.relation));
    let external_id = text(Column::ExternalId, stored.map(|b| &b.external_id));
    let has_email_columns = roster.columns.iter().any(|c| matches!(c, Column::Email(_)));
    let emails: Vec<(String, String)> = if has_email_columns {
        (0..4)
            .filter_map(|i| roster.cell(row, &Column::Email(i)).map(|v| (format!("email{}", i + 1), v.to_string())))
            .collect()
    } else {
        stored
            .iter()
            .flat_map(|b| b.emails.iter())
            .enumerate()
            .map(|(i, e)| (format!("email{}", i + 1), e.as_str().to_string()))
            .collect()
    };
    let mut attributes: BTreeMap<String, String> = stored.map(|b| b.attributes.clone()).unwrap_or_default();
    for (i, column) in roster.columns.iter().enumerate() {
        if let Column::Attribute(key) = column {
            match row.cells[i].trim() {
                "" => attributes.remove(key),
                value => attributes.insert(key.clone(), value.to_string()),
            };
        }
    }
    RawProfile {
        name: name.as_deref(),
        name_kana: name_kana.as_deref(),
        student_name: student_name.as_deref(),
        relation: relation.as_deref(),
        locale: stored.and_then(|b| b.locale.as_deref()),
        external_id: external_id.as_deref(),
        emails: emails.iter().map(|(f, v)| (f.clone(), v.as_str())).collect(),
        attributes: attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
    }
    .parse()
    .map_err(|error| match error {
        DomainError::Invalid(errors) => DomainError::Invalid(
            errors
                .into_iter()
                .map(|e| {
                    // Name the column as the file does: `grade`, not `attributes.grade`.
                    let field = e.field.strip_prefix("attributes.").map(str::to_string).unwrap_or(e.field);
                    FieldError::at_line(row.line, field, e.message)
                })
                .collect(),
        ),
        other => other,
    })
}

fn list_names(roster: &Roster, row: &Row) -> Vec<String> {
    roster
        .cell(row, &Column::Lists)
        .map(|v| v.split([';', '；']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Plans the import of `roster` against `stored` (the guardians found for its `lookups`,
/// or the whole roster, by id) and the organisation's lists (`known_lists`: name → id).
/// `list_id` is a list every imported guardian goes in besides its `lists` cell.
///
/// A row is the guardian with its `external_id`; a row without one is the guardian with its
/// first address (where several guardians share it, the oldest: ids sort by creation
/// time); else a new guardian. A second row for the same guardian is refused. Errors of
/// the rows come back in the plan, not as `Err`, so that a partial import can go ahead.
pub fn plan<'a>(
    roster: &Roster,
    stored: &'a HashMap<String, StoredGuardian>,
    known_lists: &HashMap<String, String>,
    list_id: Option<&str>,
) -> Result<ImportPlan<'a>, DomainError> {
    let by_external_id: HashMap<&str, &StoredGuardian> =
        stored.values().filter_map(|g| g.profile.external_id.as_deref().map(|external_id| (external_id, g))).collect();
    let mut by_email: HashMap<&str, &StoredGuardian> = HashMap::new();
    for guardian in stored.values() {
        for key in &guardian.email_keys {
            let oldest = by_email.entry(key.as_str()).or_insert(guardian);
            if guardian.id < oldest.id {
                *oldest = guardian;
            }
        }
    }

    let mut errors: Vec<FieldError> = Vec::new();
    let mut rows: Vec<PlannedRow> = Vec::new();
    let mut seen_external: HashMap<String, u64> = HashMap::new();
    let mut seen_email: HashMap<String, u64> = HashMap::new();
    let mut new_lists: BTreeSet<String> = BTreeSet::new();
    for row in &roster.rows {
        let external_id = roster.cell(row, &Column::ExternalId).map(str::trim).filter(|v| !v.is_empty());
        let email_key = first_email_key(roster, row);
        // A row is the same guardian as an earlier row of the file: refuse the second.
        if let Some(id) = external_id {
            if let Some(first) = seen_external.insert(id.to_string(), row.line) {
                errors.push(FieldError::at_line(row.line, "external_id", format!("repeats line {first}")));
                continue;
            }
        } else if let Some(key) = &email_key
            && let Some(first) = seen_email.insert(key.clone(), row.line)
        {
            errors.push(FieldError::at_line(
                row.line,
                "email1",
                format!("the same guardian as line {first} (same first address)"),
            ));
            continue;
        }
        let guardian = match external_id {
            Some(id) => by_external_id.get(id),
            None => email_key.as_deref().and_then(|k| by_email.get(k)),
        }
        .copied();
        let profile = match merged_profile(roster, row, guardian.map(|g| &g.profile)) {
            Ok(profile) => profile,
            Err(DomainError::Invalid(row_errors)) => {
                errors.extend(row_errors);
                continue;
            }
            Err(other) => return Err(other),
        };
        let mut row_lists = list_names(roster, row);
        for name in &row_lists {
            if !known_lists.contains_key(name) {
                if name.chars().count() > 100 {
                    errors.push(FieldError::at_line(
                        row.line,
                        "lists",
                        format!("list names are at most 100 characters: {name}"),
                    ));
                }
                new_lists.insert(name.clone());
            }
        }
        row_lists.dedup();
        let plan = match guardian {
            None => Plan::Create(profile),
            Some(guardian) => {
                let wanted: Vec<&str> =
                    row_lists.iter().filter_map(|n| known_lists.get(n)).map(String::as_str).chain(list_id).collect();
                let new_memberships = row_lists.iter().any(|n| !known_lists.contains_key(n))
                    || wanted.iter().any(|id| !guardian.list_ids.iter().any(|l| l == id));
                if guardian.profile == profile && !new_memberships {
                    Plan::Unchanged
                } else {
                    Plan::Update { guardian, profile }
                }
            }
        };
        rows.push(PlannedRow { line: row.line, plan, lists: row_lists });
    }
    errors.sort_by_key(|e| e.line);
    // A row with errors was skipped above, but a bad list name belongs to a planned row.
    let bad_lines: BTreeSet<u64> = errors.iter().filter_map(|e| e.line).collect();
    rows.retain(|p| !bad_lines.contains(&p.line));
    let new_lists = new_lists.into_iter().filter(|name| rows.iter().any(|p| p.lists.contains(name))).collect();
    Ok(ImportPlan { rows, new_lists, errors })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::roster_csv::parse;

    fn guardian(id: &str, name: &str, external_id: Option<&str>, emails: &[&str], list_ids: &[&str]) -> StoredGuardian {
        StoredGuardian {
            id: id.into(),
            profile: MemberProfile {
                name: name.into(),
                name_kana: None,
                student_name: None,
                relation: None,
                locale: None,
                external_id: external_id.map(str::to_string),
                emails: emails.iter().map(|e| EmailAddress::parse(e).unwrap()).collect(),
                attributes: BTreeMap::from([("grade".to_string(), "1".to_string())]),
            },
            email_keys: emails.iter().map(|e| e.to_lowercase()).collect(),
            list_ids: list_ids.iter().map(|l| l.to_string()).collect(),
        }
    }

    fn by_id(guardians: Vec<StoredGuardian>) -> HashMap<String, StoredGuardian> {
        guardians.into_iter().map(|g| (g.id.clone(), g)).collect()
    }

    fn lists(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(name, id)| (name.to_string(), id.to_string())).collect()
    }

    fn updated<'a>(planned: &'a ImportPlan, line: u64) -> (&'a str, &'a MemberProfile) {
        match &planned.rows.iter().find(|r| r.line == line).expect("a planned row").plan {
            Plan::Update { guardian, profile } => (guardian.id.as_str(), profile),
            other => panic!("line {line} is {other:?}, not an update"),
        }
    }

    #[test]
    fn the_lookups_are_the_external_ids_and_each_rows_first_address() {
        let roster = parse(
            "name,email1,email2,external_id\nA,,Taro@Example.JP,S-1\nB,hanako@x.jp,,\nC,not an address,c@x.jp,\n",
        )
        .unwrap();
        assert_eq!(
            lookups(&roster),
            Lookups {
                external_ids: vec!["S-1".into()],
                email_keys: vec!["taro@example.jp".into(), "hanako@x.jp".into()]
            }
        );
    }

    #[test]
    fn rows_are_matched_by_external_id_else_by_first_address_else_created() {
        let stored = by_id(vec![
            guardian("01", "山田", Some("S-1"), &["yamada@x.jp"], &[]),
            guardian("02", "佐藤", None, &["Sato@X.jp"], &[]),
        ]);
        let roster =
            parse("name,email1,external_id,grade\n山田 太郎,,S-1,1\n佐藤 花子,SATO@x.jp,,1\n鈴木,suzuki@x.jp,,1\n")
                .unwrap();
        let planned = plan(&roster, &stored, &HashMap::new(), None).unwrap();
        assert!(planned.errors.is_empty(), "{:?}", planned.errors);
        let (id, profile) = updated(&planned, 2);
        assert_eq!((id, profile.name.as_str()), ("01", "山田 太郎"));
        // The file has address columns: the guardian's empty cells clear the stored ones.
        assert!(profile.emails.is_empty());
        assert_eq!(updated(&planned, 3).0, "02");
        assert!(matches!(&planned.rows[2].plan, Plan::Create(p) if p.name == "鈴木"));
        assert_eq!(planned.counts(), Counts { created: 1, updated: 2, unchanged: 0 });
    }

    #[test]
    fn where_guardians_share_an_address_the_oldest_is_the_one() {
        let stored = by_id(vec![
            guardian("03", "新", None, &["family@x.jp"], &[]),
            guardian("01", "古", None, &["family@x.jp"], &[]),
            guardian("02", "中", None, &["family@x.jp"], &[]),
        ]);
        let roster = parse("name,email1\n家族,family@x.jp\n").unwrap();
        let planned = plan(&roster, &stored, &HashMap::new(), None).unwrap();
        assert_eq!(updated(&planned, 2).0, "01");
    }

    #[test]
    fn a_row_as_stored_is_unchanged_until_it_adds_a_list() {
        let stored = by_id(vec![guardian("01", "山田", Some("S-1"), &["yamada@x.jp"], &["L1"])]);
        let known = lists(&[("1年A組", "L1"), ("PTA", "L2")]);
        let same = parse("name,email1,external_id,grade,lists\n山田,yamada@x.jp,S-1,1,1年A組\n").unwrap();
        let planned = plan(&same, &stored, &known, Some("L1")).unwrap();
        assert_eq!(planned.rows[0].plan, Plan::Unchanged);
        assert_eq!(planned.counts(), Counts { created: 0, updated: 0, unchanged: 1 });

        // The same row, but the import also puts everyone in PTA: an update of memberships.
        let planned = plan(&same, &stored, &known, Some("L2")).unwrap();
        assert_eq!(updated(&planned, 2).1, &stored["01"].profile);

        // A list that does not exist yet is created for it.
        let new_list = parse("name,external_id,lists\n山田,S-1,1年A組;図書委員\n").unwrap();
        let planned = plan(&new_list, &stored, &known, None).unwrap();
        assert!(matches!(planned.rows[0].plan, Plan::Update { .. }));
        assert_eq!(planned.rows[0].lists, ["1年A組", "図書委員"]);
        assert_eq!(planned.new_lists, ["図書委員"]);
    }

    #[test]
    fn an_empty_cell_clears_and_a_missing_column_keeps() {
        let mut stored = guardian("01", "山田", Some("S-1"), &["yamada@x.jp"], &[]);
        stored.profile.relation = Some("母".into());
        stored.profile.attributes.insert("club".into(), "野球".into());
        let stored = by_id(vec![stored]);
        let roster = parse("name,external_id,grade,club\n山田,S-1,2,\n").unwrap();
        let planned = plan(&roster, &stored, &HashMap::new(), None).unwrap();
        let profile = updated(&planned, 2).1;
        assert_eq!(profile.relation.as_deref(), Some("母"));
        assert_eq!(profile.attributes, BTreeMap::from([("grade".to_string(), "2".to_string())]));
    }

    #[test]
    fn a_second_row_for_one_guardian_is_refused_by_its_line() {
        let roster =
            parse("name,email1,external_id\nA,a@x.jp,S-1\nB,b@x.jp,S-1\nC,c@x.jp,\nD,C@X.JP,\nE,c@x.jp,S-2\n").unwrap();
        let nobody = HashMap::new();
        let planned = plan(&roster, &nobody, &HashMap::new(), None).unwrap();
        assert_eq!(
            planned.errors,
            [
                FieldError::at_line(3, "external_id", "repeats line 2"),
                FieldError::at_line(5, "email1", "the same guardian as line 4 (same first address)"),
            ]
        );
        let lines: Vec<u64> = planned.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 4, 6], "a row with an external id is not matched by its address");
    }

    #[test]
    fn invalid_rows_are_reported_by_line_and_column_and_left_out() {
        let long_list = "長".repeat(101);
        let roster = parse(&format!(
            "name,email1,grade,lists\n,a@x.jp,1,\nB,b@x.jp,{},\nC,c@x.jp,1,{long_list};新しいリスト\nD,d@x.jp,1,新しいリスト2\n",
            "x".repeat(201)
        ))
        .unwrap();
        let nobody = HashMap::new();
        let planned = plan(&roster, &nobody, &HashMap::new(), None).unwrap();
        let errors: Vec<(Option<u64>, &str)> = planned.errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(errors, [(Some(2), "name"), (Some(3), "grade"), (Some(4), "lists")]);
        assert_eq!(planned.rows.len(), 1);
        assert_eq!(planned.rows[0].line, 5);
        // Only lists a planned row goes in are created.
        assert_eq!(planned.new_lists, ["新しいリスト2"]);
    }
}
