//! The records behind the entity API: each tenant's customers, in the contract-based API's JSON
//! shape (`{"CustomerID": {"value": "C000001"}, …}`), with the `$top`, `$skip` and simple
//! `$filter` queries a client pages and looks them up with.

use std::collections::HashMap;

use ledgerlink_core::Timestamp;
use serde_json::{Map, Value, json};

use super::random;

/// Why an entity request is refused, as the handler renders it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EntityError {
    /// 400: a malformed body or query.
    BadRequest(String),
    /// 422: a record the business logic refuses.
    Invalid(String),
    /// 404: no record with this key.
    NotFound,
    /// 404: no such endpoint, version or entity.
    UnknownResource,
    /// 405: the entity cannot be written.
    MethodNotAllowed(&'static str),
}

pub(crate) struct Customer {
    id: String,
    customer_id: String,
    name: String,
    class: String,
    status: String,
    currency: String,
    note: String,
    modified: Timestamp,
}

type FieldReader = fn(&Customer) -> &str;

/// The fields a `$filter` may compare, and how to read them.
const FILTERABLE: [(&str, FieldReader); 4] = [
    ("CustomerID", |c| &c.customer_id),
    ("CustomerName", |c| &c.name),
    ("Status", |c| &c.status),
    ("CustomerClass", |c| &c.class),
];

impl Customer {
    fn new(customer_id: String, name: String, now: Timestamp) -> Self {
        Self {
            id: random::uuid(),
            customer_id,
            name,
            class: "DEFAULT".into(),
            status: "Active".into(),
            currency: "AUD".into(),
            note: String::new(),
            modified: now,
        }
    }

    pub(crate) fn to_json(&self, row_number: usize) -> Value {
        let value = |v: &str| json!({"value": v});
        json!({
            "id": self.id,
            "rowNumber": row_number,
            "note": value(&self.note),
            "CustomerID": value(&self.customer_id),
            "CustomerName": value(&self.name),
            "CustomerClass": value(&self.class),
            "Status": value(&self.status),
            "CurrencyID": value(&self.currency),
            "LastModifiedDateTime": value(&self.modified.to_rfc3339()),
            "custom": {},
        })
    }

    fn matches_key(&self, key: &str) -> bool {
        self.id.eq_ignore_ascii_case(key) || self.customer_id.eq_ignore_ascii_case(key)
    }
}

/// One tenant's customers. Every tenant starts with three; what is created is kept.
pub(crate) struct Customers {
    records: Vec<Customer>,
    next_number: u32,
}

impl Customers {
    pub(crate) fn new(now: Timestamp) -> Self {
        let mut customers = Self { records: Vec::new(), next_number: 1 };
        for name in ["Acme Pty Ltd", "Blue Gum Bakery", "Coastal Freight Co"] {
            let id = customers.next_id();
            customers.records.push(Customer::new(id, name.into(), now));
        }
        customers
    }

    fn next_id(&mut self) -> String {
        loop {
            let id = format!("C{:06}", self.next_number);
            self.next_number += 1;
            if !self.records.iter().any(|c| c.customer_id.eq_ignore_ascii_case(&id)) {
                return id;
            }
        }
    }

    /// `GET …/Customer` with its query (`$top`, `$skip`, `$filter`; others are ignored, as
    /// `$select` and `$expand` change nothing here).
    pub(crate) fn list(&self, query: &HashMap<String, String>) -> Result<Value, EntityError> {
        let number = |name: &str| -> Result<Option<usize>, EntityError> {
            query
                .get(name)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| {
                        EntityError::BadRequest(format!(
                            "The query parameter '{name}' is not a valid number."
                        ))
                    })
                })
                .transpose()
        };
        let top = number("$top")?;
        let skip = number("$skip")?.unwrap_or(0);
        let filter = query.get("$filter").map(|f| parse_filter(f)).transpose()?.unwrap_or_default();
        let mut matching: Vec<&Customer> = self
            .records
            .iter()
            .filter(|c| filter.iter().all(|(read, value)| read(c).eq_ignore_ascii_case(value)))
            .collect();
        matching.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        let page = matching.into_iter().skip(skip).take(top.unwrap_or(usize::MAX));
        Ok(Value::Array(page.enumerate().map(|(i, c)| c.to_json(skip + i + 1)).collect()))
    }

    /// `GET …/Customer/{key}`: by `CustomerID` or by the record's `id`.
    pub(crate) fn get(&self, key: &str) -> Result<Value, EntityError> {
        self.records.iter().find(|c| c.matches_key(key)).map(|c| c.to_json(1)).ok_or(EntityError::NotFound)
    }

    /// `PUT …/Customer`: updates the record named by `id` or `CustomerID`, else creates one
    /// (numbering `CustomerID` when the body has none).
    pub(crate) fn put(&mut self, body: &Value, now: Timestamp) -> Result<Value, EntityError> {
        let Some(fields) = body.as_object() else {
            return Err(EntityError::BadRequest("The request body must be a JSON object.".into()));
        };
        let customer_id = field(fields, "CustomerID")?.filter(|v| !v.trim().is_empty());
        let name = field(fields, "CustomerName")?;
        let status = field(fields, "Status")?;
        let class = field(fields, "CustomerClass")?;
        let currency = field(fields, "CurrencyID")?;
        // Older endpoints send the note as a bare string, newer ones wrapped like any field.
        let note = match fields.get("note") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => field(fields, "note")?,
        };
        let by_id = fields.get("id").and_then(Value::as_str);
        let existing = self.records.iter().position(|c| {
            by_id.is_some_and(|id| c.id.eq_ignore_ascii_case(id))
                || customer_id.as_deref().is_some_and(|key| c.customer_id.eq_ignore_ascii_case(key))
        });
        let index = match existing {
            Some(index) => index,
            None => {
                let Some(name) = name.clone().filter(|n| !n.trim().is_empty()) else {
                    return Err(EntityError::Invalid("Error: 'Customer Name' cannot be empty.".into()));
                };
                let id = customer_id.clone().unwrap_or_else(|| self.next_id());
                self.records.push(Customer::new(id, name, now));
                self.records.len() - 1
            }
        };
        let record = &mut self.records[index];
        if let Some(name) = name {
            if name.trim().is_empty() {
                return Err(EntityError::Invalid("Error: 'Customer Name' cannot be empty.".into()));
            }
            record.name = name;
        }
        for (value, slot) in
            [(status, &mut record.status), (class, &mut record.class), (currency, &mut record.currency)]
        {
            if let Some(value) = value {
                *slot = value;
            }
        }
        if let Some(note) = note {
            record.note = note;
        }
        record.modified = now;
        Ok(record.to_json(1))
    }
}

/// A field in the `{"value": …}` wrapper: absent or `{"value": null}` reads as `None`.
fn field(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, EntityError> {
    let bad =
        || EntityError::BadRequest(format!("The field '{name}' must be an object with a string 'value'."));
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(wrapper)) => match wrapper.get("value") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(bad()),
        },
        Some(_) => Err(bad()),
    }
}

/// `Field eq 'value' [and Field eq 'value' …]`; anything else is refused rather than ignored,
/// so a client never mistakes an unfiltered list for a filtered one.
fn parse_filter(filter: &str) -> Result<Vec<(FieldReader, String)>, EntityError> {
    let unsupported = || {
        EntityError::BadRequest(format!(
            "The $filter '{filter}' is not supported by the simulator: use Field eq 'value' joined by 'and', on {}.",
            FILTERABLE.map(|(name, _)| name).join(", ")
        ))
    };
    let mut conditions = Vec::new();
    let mut rest = filter.trim();
    loop {
        let (name, after) = rest.split_once(' ').ok_or_else(unsupported)?;
        let after = after.trim_start();
        let after = after.strip_prefix("eq ").ok_or_else(unsupported)?.trim_start();
        let after = after.strip_prefix('\'').ok_or_else(unsupported)?;
        // The value runs to the next lone quote; '' is an escaped quote.
        let mut value = String::new();
        let mut chars = after.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().is_some_and(|(_, next)| *next == '\'') {
                    chars.next();
                    value.push('\'');
                } else {
                    end = Some(i + 1);
                    break;
                }
            } else {
                value.push(c);
            }
        }
        let end = end.ok_or_else(unsupported)?;
        let read = FILTERABLE.iter().find(|(field, _)| *field == name).map(|(_, read)| *read);
        conditions.push((read.ok_or_else(unsupported)?, value));
        rest = after[end..].trim_start();
        if rest.is_empty() {
            return Ok(conditions);
        }
        let lowered = rest.to_ascii_lowercase();
        if !lowered.starts_with("and ") {
            return Err(unsupported());
        }
        rest = rest[4..].trim_start();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn ids(list: &Value) -> Vec<&str> {
        list.as_array().unwrap().iter().map(|c| c["CustomerID"]["value"].as_str().unwrap()).collect()
    }

    #[test]
    fn lists_page_with_top_and_skip() {
        let customers = Customers::new(Timestamp::from_millis(0));
        assert_eq!(ids(&customers.list(&query(&[])).unwrap()), ["C000001", "C000002", "C000003"]);
        let page = customers.list(&query(&[("$top", "1"), ("$skip", "1")])).unwrap();
        assert_eq!(ids(&page), ["C000002"]);
        assert_eq!(page[0]["rowNumber"], 2);
        assert!(matches!(customers.list(&query(&[("$top", "x")])), Err(EntityError::BadRequest(_))));
    }

    #[test]
    fn filters_on_equality_and_refuses_what_it_cannot_read() {
        let customers = Customers::new(Timestamp::from_millis(0));
        let found = customers.list(&query(&[("$filter", "CustomerName eq 'Blue Gum Bakery'")])).unwrap();
        assert_eq!(ids(&found), ["C000002"]);
        let both = "Status eq 'Active' and CustomerID eq 'C000003'";
        assert_eq!(ids(&customers.list(&query(&[("$filter", both)])).unwrap()), ["C000003"]);
        for bad in ["CustomerName ne 'x'", "Balance eq '1'", "CustomerID eq 'open", "CustomerID eq 'a' or x"]
        {
            assert!(
                matches!(customers.list(&query(&[("$filter", bad)])), Err(EntityError::BadRequest(_))),
                "{bad}"
            );
        }
        assert_eq!(parse_filter("CustomerName eq 'O''Brien'").unwrap()[0].1, "O'Brien");
    }

    #[test]
    fn put_creates_numbers_and_updates_by_key() {
        let mut customers = Customers::new(Timestamp::from_millis(0));
        let created = customers
            .put(&json!({"CustomerName": {"value": "Dune Surf"}}), Timestamp::from_millis(5))
            .unwrap();
        assert_eq!(created["CustomerID"]["value"], "C000004");
        let id = created["id"].as_str().unwrap().to_owned();
        let updated = customers
            .put(&json!({"id": id, "Status": {"value": "On Hold"}}), Timestamp::from_millis(6))
            .unwrap();
        assert_eq!(
            (updated["CustomerName"]["value"].as_str(), updated["Status"]["value"].as_str()),
            (Some("Dune Surf"), Some("On Hold"))
        );
        let by_key = customers
            .put(
                &json!({"CustomerID": {"value": "c000004"}, "CustomerName": {"value": "Dune Surf Co"}}),
                Timestamp::from_millis(7),
            )
            .unwrap();
        assert_eq!(by_key["id"], id.as_str());
        assert_eq!(customers.get("C000004").unwrap()["CustomerName"]["value"], "Dune Surf Co");
        assert_eq!(customers.get(&id).unwrap()["CustomerID"]["value"], "C000004");
        assert_eq!(customers.get("nope"), Err(EntityError::NotFound));
        assert!(matches!(
            customers.put(&json!({"Status": {"value": "Active"}}), Timestamp::from_millis(8)),
            Err(EntityError::Invalid(_))
        ));
        assert!(matches!(
            customers.put(&json!({"CustomerName": "bare"}), Timestamp::from_millis(8)),
            Err(EntityError::BadRequest(_))
        ));
    }
}
