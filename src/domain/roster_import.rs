//! Planning a roster import: which stored guardian each row of the file is, and what
//! importing the row would change. The file is planned a chunk of rows at a time: the
//! caller looks the chunk's guardians up (`lookups` says by what), hands them in, and
//! writes the chunk's plan, so that no more than a chunk of rows and of stored guardians
//! is ever held.
//!
//! Addresses are secret from callers without `contacts:read`, and an import must not tell
//! them whether an address is on the roster: for them a row is matched by `external_id`
//! only (matching by address would show in the counts and on the roster afterwards), and
//! an existing guardian's address cells must read as the caller sees them, masked, which
//! keeps the addresses as they are. Whatever they guess, the answer depends only on what
//! they can see.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::member::{MemberProfile, RawProfile, shown_as_masked};
use super::roster_csv::{Column, Header, Row};
use super::{DomainError, EmailAddress, FieldError};

/// Errors listed in one answer; past it they are counted. A file of 50,000 bad rows would
/// otherwise answer (and hold) millions of them.
pub const MAX_ERRORS: usize = 1_000;

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

/// What a chunk names its guardians by, for the caller to look up before planning it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Every non-empty `external_id` cell.
    pub external_ids: Vec<String>,
    /// Each row's first address, case-folded (none for a caller who may not see addresses).
    pub email_keys: Vec<String>,
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

/// The errors of a file, by line: the first `MAX_ERRORS`, then how many more.
#[derive(Debug, Default)]
pub struct Errors {
    listed: Vec<FieldError>,
    /// Errors past the limit, and the line of the first of them.
    more: usize,
    first_unlisted: u64,
}

impl Errors {
    fn push(&mut self, error: FieldError) {
        if self.listed.len() < MAX_ERRORS {
            self.listed.push(error);
        } else {
            if self.more == 0 {
                self.first_unlisted = error.line.unwrap_or_default();
            }
            self.more += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// Every listed error, and one saying how many more there are.
    pub fn into_list(mut self) -> Vec<FieldError> {
        if self.more > 0 {
            self.listed.push(FieldError::at_line(
                self.first_unlisted,
                "row",
                format!("{} more errors from this line on (only the first {MAX_ERRORS} are listed)", self.more),
            ));
        }
        self.listed
    }
}

/// Plans a file chunk by chunk, remembering what spans chunks: the rows seen (a second row
/// for one guardian is refused), the lists, the counts and the errors.
pub struct Planner<'h> {
    header: &'h Header,
    /// The organisation's lists, name → id; lists the import creates are added as it goes.
    known_lists: HashMap<String, String>,
    /// A list every imported guardian goes in besides its `lists` cell.
    list_id: Option<String>,
    /// Whether the caller may see addresses (`contacts:read`).
    addresses_visible: bool,
    seen_external: HashMap<String, u64>,
    seen_email: HashMap<String, u64>,
    seen_guardian: HashMap<String, u64>,
    new_lists: BTreeSet<String>,
    pub counts: Counts,
    pub errors: Errors,
}

impl<'h> Planner<'h> {
    pub fn new(
        header: &'h Header,
        known_lists: HashMap<String, String>,
        list_id: Option<String>,
        addresses_visible: bool,
    ) -> Planner<'h> {
        Planner {
            header,
            known_lists,
            list_id,
            addresses_visible,
            seen_external: HashMap::new(),
            seen_email: HashMap::new(),
            seen_guardian: HashMap::new(),
            new_lists: BTreeSet::new(),
            counts: Counts::default(),
            errors: Errors::default(),
        }
    }

    /// Who the chunk's rows may be: their external ids and, for a caller who may see
    /// addresses, the first addresses of rows without one.
    pub fn lookups(&self, rows: &[Row]) -> Lookups {
        let mut lookups = Lookups::default();
        for row in rows {
            match self.external_id(row) {
                Some(id) => lookups.external_ids.push(id.to_string()),
                None if self.addresses_visible => lookups.email_keys.extend(self.first_email_key(row)),
                None => {}
            }
        }
        lookups
    }

    fn external_id<'r>(&self, row: &'r Row) -> Option<&'r str> {
        self.header.cell(row, &Column::ExternalId).filter(|v| !v.is_empty())
    }

    /// The first non-empty address cell of the row, case-folded, when it is an address: a
    /// row without an `external_id` is the guardian who has it.
    fn first_email_key(&self, row: &Row) -> Option<String> {
        (0..4)
            .filter_map(|i| self.header.cell(row, &Column::Email(i)))
            .find(|v| !v.is_empty())
            .and_then(|v| EmailAddress::parse(v).ok())
            .map(|e| e.key())
    }

    /// The list id for `name`, once the list exists.
    pub fn list(&self, name: &str) -> Option<&String> {
        self.known_lists.get(name)
    }

    /// Records a list the import created for a planned row.
    pub fn list_created(&mut self, name: String, id: String) {
        self.known_lists.insert(name, id);
    }

    /// Lists named in the file that did not exist and that a planned row goes in, sorted.
    pub fn new_lists(&self) -> Vec<String> {
        self.new_lists.iter().cloned().collect()
    }

    /// Plans a chunk of rows against `stored` (the guardians found for its `lookups`, by
    /// id). A row is the guardian with its `external_id`; a row without one is the guardian
    /// with its first address (where several guardians share it, the oldest: ids sort by
    /// creation time) when the caller may see addresses; else a new guardian. A second row
    /// for the same guardian is refused. Errors of the rows go to `errors`, not `Err`, so
    /// that a partial import can go ahead; the rows returned are those without errors.
    pub fn plan<'s>(
        &mut self,
        rows: &[Row],
        stored: &'s HashMap<String, StoredGuardian>,
    ) -> Result<Vec<PlannedRow<'s>>, DomainError> {
        let by_external_id: HashMap<&str, &StoredGuardian> = stored
            .values()
            .filter_map(|g| g.profile.external_id.as_deref().map(|external_id| (external_id, g)))
            .collect();
        let mut by_email: HashMap<&str, &StoredGuardian> = HashMap::new();
        if self.addresses_visible {
            for guardian in stored.values() {
                for key in &guardian.email_keys {
                    let oldest = by_email.entry(key.as_str()).or_insert(guardian);
                    if guardian.id < oldest.id {
                        *oldest = guardian;
                    }
                }
            }
        }

        let mut planned = Vec::new();
        for row in rows {
            let external_id = self.external_id(row);
            let email_key = self.first_email_key(row);
            // A row is the same guardian as an earlier row of the file: refuse the second.
            if let Some(id) = external_id {
                if let Some(first) = self.seen_external.insert(id.to_string(), row.line) {
                    self.errors.push(FieldError::at_line(row.line, "external_id", format!("repeats line {first}")));
                    continue;
                }
            } else if let Some(key) = &email_key
                && let Some(first) = self.seen_email.insert(key.clone(), row.line)
            {
                self.errors.push(FieldError::at_line(
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
            if let Some(guardian) = guardian
                && let Some(first) = self.seen_guardian.insert(guardian.id.clone(), row.line)
            {
                // One row by external_id, another by an address of the same guardian.
                let field = if external_id.is_some() { "external_id" } else { "email1" };
                self.errors.push(FieldError::at_line(row.line, field, format!("the same guardian as line {first}")));
                continue;
            }
            let profile = match self.merged_profile(row, guardian.map(|g| &g.profile)) {
                Ok(profile) => profile,
                Err(DomainError::Invalid(row_errors)) => {
                    row_errors.into_iter().for_each(|e| self.errors.push(e));
                    continue;
                }
                Err(other) => return Err(other),
            };
            let mut row_lists = self.list_names(row);
            let bad_list = row_lists.iter().find(|name| {
                !self.known_lists.contains_key(*name)
                    && (name.chars().count() > 100 || name.chars().any(char::is_control))
            });
            if let Some(name) = bad_list {
                let message = format!("list names are 1 to 100 characters without control characters: {name}");
                self.errors.push(FieldError::at_line(row.line, "lists", message));
                continue;
            }
            row_lists.dedup();
            let plan = match guardian {
                None => Plan::Create(profile),
                Some(guardian) => {
                    let wanted: Vec<&str> = row_lists
                        .iter()
                        .filter_map(|n| self.known_lists.get(n))
                        .map(String::as_str)
                        .chain(self.list_id.as_deref())
                        .collect();
                    let new_memberships = row_lists.iter().any(|n| !self.known_lists.contains_key(n))
                        || wanted.iter().any(|id| !guardian.list_ids.iter().any(|l| l == id));
                    if guardian.profile == profile && !new_memberships {
                        Plan::Unchanged
                    } else {
                        Plan::Update { guardian, profile }
                    }
                }
            };
            match plan {
                Plan::Create(_) => self.counts.created += 1,
                Plan::Update { .. } => self.counts.updated += 1,
                Plan::Unchanged => self.counts.unchanged += 1,
            }
            for name in &row_lists {
                if !self.known_lists.contains_key(name) {
                    self.new_lists.insert(name.clone());
                }
            }
            planned.push(PlannedRow { line: row.line, plan, lists: row_lists });
        }
        Ok(planned)
    }

    /// The row's profile: columns in the file replace stored values (an empty cell clears);
    /// columns the file does not have keep what is stored.
    fn merged_profile(&self, row: &Row, stored: Option<&MemberProfile>) -> Result<MemberProfile, DomainError> {
        let header = self.header;
        let text = |column: Column, old: Option<&Option<String>>| -> Option<String> {
            match header.cell(row, &column) {
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
        let email_cells: Vec<(usize, &str)> =
            (0..4).filter_map(|i| header.cell(row, &Column::Email(i)).map(|v| (i, v))).collect();
        let stored_emails = || -> Vec<(String, String)> {
            stored
                .iter()
                .flat_map(|b| b.emails.iter())
                .enumerate()
                .map(|(i, e)| (format!("email{}", i + 1), e.as_str().to_string()))
                .collect()
        };
        let emails: Vec<(String, String)> = match stored {
            _ if email_cells.is_empty() => stored_emails(),
            Some(before) if !self.addresses_visible => {
                // Only what the caller sees (masked) may be given back, which keeps them.
                let changed: Vec<FieldError> = email_cells
                    .iter()
                    .filter(|(i, cell)| !shown_as_masked(cell, before.emails.get(*i)))
                    .map(|(i, _)| {
                        FieldError::at_line(
                            row.line,
                            format!("email{}", i + 1),
                            "changing a guardian's addresses needs the contacts:read scope",
                        )
                    })
                    .collect();
                if !changed.is_empty() {
                    return Err(DomainError::Invalid(changed));
                }
                stored_emails()
            }
            _ => email_cells.iter().map(|(i, v)| (format!("email{}", i + 1), v.to_string())).collect(),
        };
        let mut attributes: BTreeMap<String, String> = stored.map(|b| b.attributes.clone()).unwrap_or_default();
        for (i, column) in header.columns.iter().enumerate() {
            if let Column::Attribute(key) = column {
                match row.cell(i) {
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

    fn list_names(&self, row: &Row) -> Vec<String> {
        self.header
            .cell(row, &Column::Lists)
            .map(|v| v.split([';', '；']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::roster_csv::read_all;

    struct Planned<'s> {
        rows: Vec<PlannedRow<'s>>,
        errors: Vec<FieldError>,
        new_lists: Vec<String>,
        counts: Counts,
    }

    /// Plans `text` as a caller with `contacts:read`, in chunks of two rows (so that what
    /// spans chunks is tested too).
    fn plan<'s>(
        text: &str,
        stored: &'s HashMap<String, StoredGuardian>,
        known: &HashMap<String, String>,
        list_id: Option<&str>,
    ) -> Planned<'s> {
        plan_as(text, stored, known, list_id, true)
    }

    fn plan_as<'s>(
        text: &str,
        stored: &'s HashMap<String, StoredGuardian>,
        known: &HashMap<String, String>,
        list_id: Option<&str>,
        addresses_visible: bool,
    ) -> Planned<'s> {
        let (header, rows) = read_all(text.as_bytes()).unwrap();
        let mut planner = Planner::new(&header, known.clone(), list_id.map(str::to_string), addresses_visible);
        let mut planned = Vec::new();
        for chunk in rows.chunks(2) {
            planned.extend(planner.plan(chunk, stored).unwrap());
        }
        Planned {
            rows: planned,
            new_lists: planner.new_lists(),
            counts: std::mem::take(&mut planner.counts),
            errors: std::mem::take(&mut planner.errors).into_list(),
        }
    }

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

    fn updated<'a>(planned: &'a Planned, line: u64) -> (&'a str, &'a MemberProfile) {
        match &planned.rows.iter().find(|r| r.line == line).expect("a planned row").plan {
            Plan::Update { guardian, profile } => (guardian.id.as_str(), profile),
            other => panic!("line {line} is {other:?}, not an update"),
        }
    }

    #[test]
    fn the_lookups_are_the_external_ids_else_the_first_address_if_visible() {
        let text =
            "name,email1,email2,external_id\nA,,Taro@Example.JP,S-1\nB,hanako@x.jp,,\nC,not an address,c@x.jp,\n";
        let (header, rows) = read_all(text.as_bytes()).unwrap();
        assert_eq!(
            Planner::new(&header, HashMap::new(), None, true).lookups(&rows),
            Lookups { external_ids: vec!["S-1".into()], email_keys: vec!["hanako@x.jp".into()] }
        );
        let masked = Planner::new(&header, HashMap::new(), None, false).lookups(&rows);
        assert_eq!(masked, Lookups { external_ids: vec!["S-1".into()], email_keys: vec![] });
    }

    #[test]
    fn rows_are_matched_by_external_id_else_by_first_address_else_created() {
        let stored = by_id(vec![
            guardian("01", "山田", Some("S-1"), &["yamada@x.jp"], &[]),
            guardian("02", "佐藤", None, &["Sato@X.jp"], &[]),
        ]);
        let roster = "name,email1,external_id,grade\n山田 太郎,,S-1,1\n佐藤 花子,SATO@x.jp,,1\n鈴木,suzuki@x.jp,,1\n";
        let planned = plan(roster, &stored, &HashMap::new(), None);
        assert!(planned.errors.is_empty(), "{:?}", planned.errors);
        let (id, profile) = updated(&planned, 2);
        assert_eq!((id, profile.name.as_str()), ("01", "山田 太郎"));
        // The file has address columns: the guardian's empty cells clear the stored ones.
        assert!(profile.emails.is_empty());
        assert_eq!(updated(&planned, 3).0, "02");
        assert!(matches!(&planned.rows[2].plan, Plan::Create(p) if p.name == "鈴木"));
        assert_eq!(planned.counts, Counts { created: 1, updated: 2, unchanged: 0 });
    }

    #[test]
    fn where_guardians_share_an_address_the_oldest_is_the_one() {
        let stored = by_id(vec![
            guardian("03", "新", None, &["family@x.jp"], &[]),
            guardian("01", "古", None, &["family@x.jp"], &[]),
            guardian("02", "中", None, &["family@x.jp"], &[]),
        ]);
        let roster = "name,email1\n家族,family@x.jp\n";
        let planned = plan(roster, &stored, &HashMap::new(), None);
        assert_eq!(updated(&planned, 2).0, "01");
    }

    #[test]
    fn a_row_as_stored_is_unchanged_until_it_adds_a_list() {
        let stored = by_id(vec![guardian("01", "山田", Some("S-1"), &["yamada@x.jp"], &["L1"])]);
        let known = lists(&[("1年A組", "L1"), ("PTA", "L2")]);
        let same = "name,email1,external_id,grade,lists\n山田,yamada@x.jp,S-1,1,1年A組\n";
        let planned = plan(same, &stored, &known, Some("L1"));
        assert_eq!(planned.rows[0].plan, Plan::Unchanged);
        assert_eq!(planned.counts, Counts { created: 0, updated: 0, unchanged: 1 });

        // The same row, but the import also puts everyone in PTA: an update of memberships.
        let planned = plan(same, &stored, &known, Some("L2"));
        assert_eq!(updated(&planned, 2).1, &stored["01"].profile);

        // A list that does not exist yet is created for it.
        let new_list = "name,external_id,lists\n山田,S-1,1年A組;図書委員\n";
        let planned = plan(new_list, &stored, &known, None);
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
        let roster = "name,external_id,grade,club\n山田,S-1,2,\n";
        let planned = plan(roster, &stored, &HashMap::new(), None);
        let profile = updated(&planned, 2).1;
        assert_eq!(profile.relation.as_deref(), Some("母"));
        assert_eq!(profile.attributes, BTreeMap::from([("grade".to_string(), "2".to_string())]));
    }

    #[test]
    fn a_second_row_for_one_guardian_is_refused_by_its_line() {
        let roster = "name,email1,external_id\nA,a@x.jp,S-1\nB,b@x.jp,S-1\nC,c@x.jp,\nD,C@X.JP,\nE,c@x.jp,S-2\n";
        let nobody = HashMap::new();
        let planned = plan(roster, &nobody, &HashMap::new(), None);
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
        let roster = format!(
            "name,email1,grade,lists\n,a@x.jp,1,\nB,b@x.jp,{},\nC,c@x.jp,1,{long_list};新しいリスト\nD,d@x.jp,1,新しいリスト2\n",
            "x".repeat(201)
        );
        let nobody = HashMap::new();
        let planned = plan(&roster, &nobody, &HashMap::new(), None);
        let errors: Vec<(Option<u64>, &str)> = planned.errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(errors, [(Some(2), "name"), (Some(3), "grade"), (Some(4), "lists")]);
        assert_eq!(planned.rows.len(), 1);
        assert_eq!(planned.rows[0].line, 5);
        // Only lists a planned row goes in are created.
        assert_eq!(planned.new_lists, ["新しいリスト2"]);
    }

    #[test]
    fn without_contacts_read_rows_match_by_external_id_only_and_addresses_stay_as_shown() {
        let stored = by_id(vec![
            guardian("01", "山田", Some("S-1"), &["yamada@x.jp"], &[]),
            guardian("02", "佐藤", None, &["sato@x.jp"], &[]),
        ]);
        let nothing = HashMap::new();
        // A right and a wrong guess of an address answer the same: a new guardian.
        for guess in ["sato@x.jp", "wrong@x.jp"] {
            let planned = plan_as(&format!("name,email1\n佐藤,{guess}\n"), &stored, &nothing, None, false);
            assert_eq!(planned.counts, Counts { created: 1, updated: 0, unchanged: 0 }, "{guess}");
            assert!(planned.errors.is_empty());
        }
        // An existing guardian's addresses can be neither changed, nor removed, nor confirmed.
        for guess in ["yamada@x.jp", "wrong@x.jp", ""] {
            let planned =
                plan_as(&format!("name,email1,external_id\n山田,{guess},S-1\n"), &stored, &nothing, None, false);
            let refused = "changing a guardian's addresses needs the contacts:read scope";
            assert_eq!(planned.errors, [FieldError::at_line(2, "email1", refused)], "{guess}");
            assert!(planned.rows.is_empty());
        }
        let planned = plan_as("name,email2,external_id\n山田,new@x.jp,S-1\n", &stored, &nothing, None, false);
        assert_eq!(planned.errors[0].field, "email2", "nor added to");
        // Given back as the caller sees them (masked), they are kept as stored.
        let planned =
            plan_as("name,email1,email2,external_id,grade\n山田,y***@x.jp,,S-1,1\n", &stored, &nothing, None, false);
        assert!(planned.errors.is_empty(), "{:?}", planned.errors);
        assert_eq!(planned.rows[0].plan, Plan::Unchanged);
    }

    #[test]
    fn past_the_error_limit_errors_are_counted_from_the_first_unlisted_line() {
        let text = format!("name,grade\n{}", ",1\n".repeat(MAX_ERRORS + 5));
        let nobody = HashMap::new();
        let planned = plan(&text, &nobody, &HashMap::new(), None);
        assert_eq!(planned.errors.len(), MAX_ERRORS + 1);
        let last = planned.errors.last().unwrap();
        assert_eq!((last.line, last.field.as_str()), (Some(MAX_ERRORS as u64 + 2), "row"));
        assert!(last.message.starts_with("5 more errors"), "{}", last.message);
    }
}
