//! What a fake Reckon Accounts company file holds (customers, items, invoices), how it is
//! generated from a seed, and how each record is written in a response (`CustomerRet`, …), in
//! the element order of the qbXML spec.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::xml::XmlWriter;

/// Seconds since the Unix epoch of 2023-01-01T00:00:00Z: when the generated records begin.
const GENERATED_FROM: i64 = 1_672_531_200;
/// Reckon Accounts writes local times; the fake file lives in Brisbane (no daylight saving).
const UTC_OFFSET_SECS: i64 = 10 * 3600;

/// Fixed accounts the records refer to: (ListID, FullName).
pub(crate) const SALES_ACCOUNT: (&str, &str) = ("8000000A-1672531200", "Sales");
pub(crate) const COGS_ACCOUNT: (&str, &str) = ("8000000B-1672531200", "Cost of Goods Sold");
pub(crate) const INVENTORY_ACCOUNT: (&str, &str) = ("8000000C-1672531200", "Inventory Asset");
pub(crate) const DEBTORS_ACCOUNT: (&str, &str) = ("8000000D-1672531200", "Trade Debtors");
pub(crate) const INVOICE_TEMPLATE: (&str, &str) = ("8000000E-1672531200", "Tax Invoice");

/// How to generate a company file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyOptions {
    /// The same seed gives the same file, record for record.
    pub seed: u64,
    /// Active customers.
    pub customers: usize,
    /// Inactive customers, on top of `customers` (only `ActiveStatus` `InactiveOnly`/`All`
    /// queries see them).
    pub inactive_customers: usize,
    /// Invoices, each for a random active customer with one to three lines.
    pub invoices: usize,
    /// The `*.QBW` path the file is known by.
    pub path: String,
}

impl Default for CompanyOptions {
    fn default() -> Self {
        CompanyOptions {
            seed: 1,
            customers: 35,
            inactive_customers: 2,
            invoices: 20,
            path: r"C:\Users\Public\Documents\Reckon\Company Files\Ōtaki Trading Co.QBW".to_owned(),
        }
    }
}

/// A customer (`CustomerRet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub list_id: String,
    pub name: String,
    pub is_active: bool,
    pub company_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `(element, text)` pairs of `BillAddress`, e.g. `("City", "Brisbane")`.
    pub bill_address: Vec<(String, String)>,
    pub ship_address: Vec<(String, String)>,
    pub phone: Option<String>,
    pub alt_phone: Option<String>,
    pub fax: Option<String>,
    pub email: Option<String>,
    pub contact: Option<String>,
    /// What the customer owes, in cents.
    pub balance_cents: i64,
    /// Seconds since the Unix epoch.
    pub time_created: i64,
    pub time_modified: i64,
}

/// The kinds of item the fake file has, each with its own `…Ret` element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Service,
    NonInventory,
    Inventory,
}

/// An item (`ItemServiceRet`, `ItemNonInventoryRet` or `ItemInventoryRet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub list_id: String,
    pub name: String,
    pub kind: ItemKind,
    pub is_active: bool,
    pub description: String,
    pub price_cents: i64,
    pub quantity_on_hand: i64,
    pub time_created: i64,
    pub time_modified: i64,
}

/// One line of an invoice (`InvoiceLineRet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    pub txn_line_id: String,
    pub item_list_id: String,
    pub item_name: String,
    pub description: Option<String>,
    /// As written in the request, e.g. `"3"` or `"1.5"`.
    pub quantity: Option<String>,
    pub rate_cents: Option<i64>,
    pub amount_cents: i64,
}

/// An invoice (`InvoiceRet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub txn_id: String,
    pub txn_number: u32,
    pub customer_list_id: String,
    pub customer_name: String,
    /// `YYYY-MM-DD`.
    pub txn_date: String,
    pub due_date: String,
    pub ref_number: String,
    pub po_number: Option<String>,
    pub memo: Option<String>,
    pub bill_address: Vec<(String, String)>,
    pub lines: Vec<InvoiceLine>,
    /// Payments applied, in cents.
    pub applied_cents: i64,
    pub time_created: i64,
    pub time_modified: i64,
}

impl Invoice {
    pub fn subtotal_cents(&self) -> i64 {
        self.lines.iter().map(|l| l.amount_cents).sum()
    }

    pub fn balance_remaining_cents(&self) -> i64 {
        self.subtotal_cents() - self.applied_cents
    }

    pub fn is_paid(&self) -> bool {
        self.balance_remaining_cents() <= 0
    }
}

/// The company as `CompanyQueryRq` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyInfo {
    pub name: String,
    pub address: Vec<(String, String)>,
    pub phone: String,
    pub email: String,
}

/// Everything generated for a new file.
pub(crate) struct Generated {
    pub(crate) company: CompanyInfo,
    pub(crate) customers: Vec<Customer>,
    pub(crate) items: Vec<Item>,
    pub(crate) invoices: Vec<Invoice>,
    pub(crate) ids: IdSource,
    pub(crate) rng: StdRng,
}

/// Hands out ListIDs and TxnIDs the way QuickBooks-family products write them: a hex serial
/// number, a dash, and the creation time in seconds.
#[derive(Debug, Clone)]
pub(crate) struct IdSource {
    next_list: u64,
    next_txn: u64,
    pub(crate) next_txn_number: u32,
    pub(crate) next_ref_number: u32,
}

impl IdSource {
    fn new() -> Self {
        IdSource { next_list: 0x8000_0020, next_txn: 0x1A0, next_txn_number: 1, next_ref_number: 1001 }
    }

    pub(crate) fn list_id(&mut self, created: i64) -> String {
        let id = format!("{:X}-{created}", self.next_list);
        self.next_list += 1;
        id
    }

    pub(crate) fn txn_id(&mut self, created: i64) -> String {
        let id = format!("{:X}-{created}", self.next_txn);
        self.next_txn += 1;
        id
    }
}

const FIRST_NAMES: &[&str] = &[
    "Zoë",
    "José",
    "Ngaio",
    "Søren",
    "Aroha",
    "Chloé",
    "Mateo",
    "Ana",
    "Liam",
    "Priya",
    "Hēmi",
    "Björn",
    "Mia",
    "Oliver",
    "Siobhán",
    "Tomás",
    "Wiremu",
    "Amélie",
    "Kai",
    "Ruby",
    "Jack",
    "Isla",
    "Noah",
    "François",
    "Łukasz",
    "Mei",
    "Ayşe",
    "Ahmad",
];
const LAST_NAMES: &[&str] = &[
    "Müller",
    "Nguyen",
    "O'Brien",
    "García",
    "Smith",
    "Kowalski",
    "Dvořák",
    "Sørensen",
    "Patel",
    "Brown",
    "Taylor",
    "Wilson",
    "Núñez",
    "Lefèvre",
    "Williams",
    "Te Rangi",
    "Jones",
    "Ahmed",
    "Martin",
    "Björk",
    "Żak",
    "Chen",
];
const TRADES: &[&str] = &[
    "Café",
    "Plumbing",
    "Electrical",
    "Bakery",
    "Landscaping",
    "Joinery",
    "Crèche",
    "Motors",
    "Surf Co",
    "Design Studio",
    "Vineyard",
    "Pâtisserie",
    "Dental",
    "Accounting",
    "Hair Studio",
    "Removals & Storage",
];
const STREETS: &[&str] =
    &["George", "Queen", "Ann", "Adelaide", "Elizabeth", "Wickham", "Brunswick", "Boundary"];
const CITIES: &[(&str, &str, &str)] = &[
    ("Brisbane", "QLD", "4000"),
    ("Sydney", "NSW", "2000"),
    ("Melbourne", "VIC", "3000"),
    ("Hobart", "TAS", "7000"),
    ("Perth", "WA", "6000"),
    ("Adelaide", "SA", "5000"),
    ("Cairns", "QLD", "4870"),
    ("Toowoomba", "QLD", "4350"),
];
const COMPANY_NAMES: &[&str] =
    &["Ōtaki Trading Co Pty Ltd", "Brisbane Café Supplies Pty Ltd", "Sørensen & Daughters Joinery Pty Ltd"];

/// Builds the records of a new company file from `options`.
pub(crate) fn generate(options: &CompanyOptions) -> Generated {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut ids = IdSource::new();

    let (city, state, postcode) = CITIES[rng.gen_range(0..CITIES.len())];
    let company = CompanyInfo {
        name: COMPANY_NAMES[rng.gen_range(0..COMPANY_NAMES.len())].to_owned(),
        address: vec![
            (
                "Addr1".into(),
                format!("{} {} Street", rng.gen_range(1..400), STREETS[rng.gen_range(0..STREETS.len())]),
            ),
            ("City".into(), city.into()),
            ("State".into(), state.into()),
            ("PostalCode".into(), postcode.into()),
            ("Country".into(), "Australia".into()),
        ],
        phone: phone(&mut rng),
        email: "accounts@otaki-trading.example.com.au".into(),
    };

    let items = generate_items(&mut ids);

    let mut taken = HashSet::new();
    let mut customers = Vec::new();
    let total = options.customers + options.inactive_customers;
    for i in 0..total {
        let created = GENERATED_FROM + i as i64 * 7 * 3600 + rng.gen_range(0..3600);
        let modified = created + rng.gen_range(0..30 * 86_400);
        // The first two are fixed so every file, whatever its seed, has non-ASCII names.
        let (name, business) = match i {
            0 => ("Café Müller".to_owned(), true),
            1 => ("Zoë Dvořák".to_owned(), false),
            _ => unique_name(&mut rng, &mut taken),
        };
        taken.insert(name.to_lowercase());
        let (first_name, last_name) = if business {
            (None, None)
        } else {
            let (first, last) = name.split_once(' ').unwrap_or((&name, ""));
            (Some(first.to_owned()), Some(last.to_owned()).filter(|l| !l.is_empty()))
        };
        let address = address(&mut rng);
        customers.push(Customer {
            list_id: ids.list_id(created),
            company_name: business.then(|| format!("{name} Pty Ltd")),
            first_name,
            last_name,
            bill_address: address.clone(),
            ship_address: if rng.gen_bool(0.5) { address } else { Vec::new() },
            phone: Some(phone(&mut rng)),
            alt_phone: None,
            fax: None,
            email: Some(format!("accounts@{}.example.com.au", slug(&name))),
            contact: None,
            balance_cents: 0,
            is_active: i < options.customers,
            name,
            time_created: created,
            time_modified: modified,
        });
    }

    let mut invoices = Vec::new();
    let active = options.customers.max(1).min(customers.len());
    for i in 0..options.invoices {
        if customers.is_empty() {
            break;
        }
        let customer = rng.gen_range(0..active);
        let created = GENERATED_FROM + 90 * 86_400 + i as i64 * 86_400 + rng.gen_range(0..36_000);
        let txn_id = ids.txn_id(created);
        let mut lines = Vec::new();
        for _ in 0..rng.gen_range(1..=3) {
            let item = &items[rng.gen_range(0..items.len())];
            let quantity = rng.gen_range(1..=5i64);
            lines.push(InvoiceLine {
                txn_line_id: ids.txn_id(created),
                item_list_id: item.list_id.clone(),
                item_name: item.name.clone(),
                description: Some(item.description.clone()),
                quantity: Some(quantity.to_string()),
                rate_cents: Some(item.price_cents),
                amount_cents: quantity * item.price_cents,
            });
        }
        let mut invoice = Invoice {
            txn_id,
            txn_number: ids.next_txn_number,
            customer_list_id: customers[customer].list_id.clone(),
            customer_name: customers[customer].name.clone(),
            txn_date: date(created),
            due_date: date(created + 30 * 86_400),
            ref_number: ids.next_ref_number.to_string(),
            po_number: None,
            memo: None,
            bill_address: customers[customer].bill_address.clone(),
            lines,
            applied_cents: 0,
            time_created: created,
            time_modified: created,
        };
        ids.next_txn_number += 1;
        ids.next_ref_number += 1;
        if rng.gen_bool(0.4) {
            invoice.applied_cents = invoice.subtotal_cents();
        }
        customers[customer].balance_cents += invoice.balance_remaining_cents();
        invoices.push(invoice);
    }

    Generated { company, customers, items, invoices, ids, rng }
}

// Prices in cents, grouped as dollars_cents so they read as prices.
#[allow(clippy::inconsistent_digit_grouping)]
fn generate_items(ids: &mut IdSource) -> Vec<Item> {
    let table: [(&str, ItemKind, &str, i64, i64); 8] = [
        ("Consulting", ItemKind::Service, "Consulting – per hour", 150_00, 0),
        ("Installation", ItemKind::Service, "On-site installation", 95_00, 0),
        ("Remote Support", ItemKind::Service, "Remote support – per hour", 80_00, 0),
        ("Freight", ItemKind::NonInventory, "Freight & handling", 25_00, 0),
        ("Café Supplies", ItemKind::NonInventory, "Café consumables", 12_50, 0),
        ("Kaffeebohnen 1kg", ItemKind::Inventory, "Premium coffee beans – 1 kg", 32_00, 140),
        ("Widget", ItemKind::Inventory, "Standard widget", 9_95, 1_200),
        ("Crème Brûlée Torch", ItemKind::Inventory, "Kitchen torch", 45_00, 12),
    ];
    table
        .into_iter()
        .enumerate()
        .map(|(i, (name, kind, description, price_cents, quantity_on_hand))| {
            let created = GENERATED_FROM + 3600 * i as i64;
            Item {
                list_id: ids.list_id(created),
                name: name.to_owned(),
                kind,
                is_active: true,
                description: description.to_owned(),
                price_cents,
                quantity_on_hand,
                time_created: created,
                time_modified: created,
            }
        })
        .collect()
}

fn unique_name(rng: &mut StdRng, taken: &mut HashSet<String>) -> (String, bool) {
    for _ in 0..64 {
        let last = LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())];
        let business = rng.gen_bool(0.5);
        let name = if business {
            format!("{last} {}", TRADES[rng.gen_range(0..TRADES.len())])
        } else {
            format!("{} {last}", FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())])
        };
        if !taken.contains(&name.to_lowercase()) {
            return (name, business);
        }
    }
    // The lists ran out of combinations: number them.
    let mut n = taken.len();
    loop {
        let name = format!("Customer {n}");
        if !taken.contains(&name.to_lowercase()) {
            return (name, true);
        }
        n += 1;
    }
}

fn address(rng: &mut StdRng) -> Vec<(String, String)> {
    let (city, state, postcode) = CITIES[rng.gen_range(0..CITIES.len())];
    vec![
        (
            "Addr1".into(),
            format!("{} {} Street", rng.gen_range(1..400), STREETS[rng.gen_range(0..STREETS.len())]),
        ),
        ("City".into(), city.into()),
        ("State".into(), state.into()),
        ("PostalCode".into(), postcode.into()),
        ("Country".into(), "Australia".into()),
    ]
}

fn phone(rng: &mut StdRng) -> String {
    format!("07 3{:03} {:04}", rng.gen_range(0..1000), rng.gen_range(0..10_000))
}

/// An ASCII e-mail label for a name: accents folded, everything else dropped.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        let folded = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ě' => 'e',
            'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
            'ł' => 'l',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => 'o',
            'ř' => 'r',
            'ş' | 'š' => 's',
            'ù' | 'ú' | 'û' | 'ü' | 'ū' => 'u',
            'ż' | 'ž' => 'z',
            c if c.is_ascii_alphanumeric() => c,
            ' ' | '-' => '-',
            _ => continue,
        };
        if !(folded == '-' && out.ends_with('-')) {
            out.push(folded);
        }
    }
    out.trim_matches('-').to_owned()
}

/// `1234.50` from 123450 cents.
pub(crate) fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

/// Reads an amount such as `295`, `25.5` or `-12.00` into cents (rounded half away from zero).
pub(crate) fn parse_money(text: &str) -> Option<i64> {
    let value: f64 = text.trim().parse().ok()?;
    value.is_finite().then(|| (value * 100.0).round() as i64)
}

/// `2023-05-19T18:37:02+10:00` for a time in seconds since the Unix epoch.
pub(crate) fn datetime(secs: i64) -> String {
    let local = secs + UTC_OFFSET_SECS;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let rem = local.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+10:00", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2023-05-19`, the local date of a time in seconds since the Unix epoch.
pub(crate) fn date(secs: i64) -> String {
    let (y, m, d) = civil_from_days((secs + UTC_OFFSET_SECS).div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl Customer {
    pub(crate) fn write(&self, w: &mut XmlWriter) {
        w.open("CustomerRet")
            .leaf("ListID", &self.list_id)
            .leaf("TimeCreated", &datetime(self.time_created))
            .leaf("TimeModified", &datetime(self.time_modified))
            .leaf("EditSequence", &self.time_modified.to_string())
            .leaf("Name", &self.name)
            .leaf("FullName", &self.name)
            .leaf("IsActive", bool_text(self.is_active))
            .leaf("Sublevel", "0")
            .opt_leaf("CompanyName", self.company_name.as_deref())
            .opt_leaf("FirstName", self.first_name.as_deref())
            .opt_leaf("LastName", self.last_name.as_deref())
            .group("BillAddress", &self.bill_address)
            .group("ShipAddress", &self.ship_address)
            .opt_leaf("Phone", self.phone.as_deref())
            .opt_leaf("AltPhone", self.alt_phone.as_deref())
            .opt_leaf("Fax", self.fax.as_deref())
            .opt_leaf("Email", self.email.as_deref())
            .opt_leaf("Contact", self.contact.as_deref())
            .leaf("Balance", &money(self.balance_cents))
            .leaf("TotalBalance", &money(self.balance_cents))
            .leaf("JobStatus", "None")
            .close("CustomerRet");
    }
}

impl Item {
    pub(crate) fn ret_name(&self) -> &'static str {
        match self.kind {
            ItemKind::Service => "ItemServiceRet",
            ItemKind::NonInventory => "ItemNonInventoryRet",
            ItemKind::Inventory => "ItemInventoryRet",
        }
    }

    pub(crate) fn write(&self, w: &mut XmlWriter) {
        let ret = self.ret_name();
        w.open(ret)
            .leaf("ListID", &self.list_id)
            .leaf("TimeCreated", &datetime(self.time_created))
            .leaf("TimeModified", &datetime(self.time_modified))
            .leaf("EditSequence", &self.time_modified.to_string())
            .leaf("Name", &self.name)
            .leaf("FullName", &self.name)
            .leaf("IsActive", bool_text(self.is_active))
            .leaf("Sublevel", "0");
        match self.kind {
            ItemKind::Service | ItemKind::NonInventory => {
                w.open("SalesOrPurchase")
                    .leaf("Desc", &self.description)
                    .leaf("Price", &money(self.price_cents))
                    .reference("AccountRef", SALES_ACCOUNT.0, SALES_ACCOUNT.1)
                    .close("SalesOrPurchase");
            }
            ItemKind::Inventory => {
                w.leaf("SalesDesc", &self.description)
                    .leaf("SalesPrice", &money(self.price_cents))
                    .reference("IncomeAccountRef", SALES_ACCOUNT.0, SALES_ACCOUNT.1)
                    .leaf("PurchaseCost", &money(self.price_cents / 2))
                    .reference("COGSAccountRef", COGS_ACCOUNT.0, COGS_ACCOUNT.1)
                    .reference("AssetAccountRef", INVENTORY_ACCOUNT.0, INVENTORY_ACCOUNT.1)
                    .leaf("QuantityOnHand", &self.quantity_on_hand.to_string())
                    .leaf("AverageCost", &money(self.price_cents / 2))
                    .leaf("QuantityOnOrder", "0")
                    .leaf("QuantityOnSalesOrder", "0");
            }
        }
        w.close(ret);
    }
}

impl Invoice {
    pub(crate) fn write(&self, w: &mut XmlWriter, include_lines: bool) {
        let applied = if self.applied_cents == 0 { money(0) } else { money(-self.applied_cents) };
        w.open("InvoiceRet")
            .leaf("TxnID", &self.txn_id)
            .leaf("TimeCreated", &datetime(self.time_created))
            .leaf("TimeModified", &datetime(self.time_modified))
            .leaf("EditSequence", &self.time_modified.to_string())
            .leaf("TxnNumber", &self.txn_number.to_string())
            .reference("CustomerRef", &self.customer_list_id, &self.customer_name)
            .reference("ARAccountRef", DEBTORS_ACCOUNT.0, DEBTORS_ACCOUNT.1)
            .reference("TemplateRef", INVOICE_TEMPLATE.0, INVOICE_TEMPLATE.1)
            .leaf("TxnDate", &self.txn_date)
            .leaf("RefNumber", &self.ref_number)
            .group("BillAddress", &self.bill_address)
            .leaf("IsPending", "false")
            .opt_leaf("PONumber", self.po_number.as_deref())
            .leaf("DueDate", &self.due_date)
            .leaf("Subtotal", &money(self.subtotal_cents()))
            .leaf("SalesTaxTotal", "0.00")
            .leaf("AppliedAmount", &applied)
            .leaf("BalanceRemaining", &money(self.balance_remaining_cents()))
            .opt_leaf("Memo", self.memo.as_deref())
            .leaf("IsPaid", bool_text(self.is_paid()))
            .leaf("IsToBePrinted", "false")
            .leaf("IsToBeEmailed", "false");
        if include_lines {
            for line in &self.lines {
                w.open("InvoiceLineRet")
                    .leaf("TxnLineID", &line.txn_line_id)
                    .reference("ItemRef", &line.item_list_id, &line.item_name)
                    .opt_leaf("Desc", line.description.as_deref())
                    .opt_leaf("Quantity", line.quantity.as_deref())
                    .opt_leaf("Rate", line.rate_cents.map(money).as_deref())
                    .leaf("Amount", &money(line.amount_cents))
                    .close("InvoiceLineRet");
            }
        }
        w.close("InvoiceRet");
    }
}

fn bool_text(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_generates_the_same_file() {
        let options = CompanyOptions::default();
        let a = generate(&options);
        let b = generate(&options);
        assert_eq!(a.customers, b.customers);
        assert_eq!(a.invoices, b.invoices);
        let other = generate(&CompanyOptions { seed: 2, ..options });
        assert_ne!(a.customers, other.customers);
    }

    #[test]
    fn customers_are_distinct_and_some_names_are_not_ascii() {
        let generated = generate(&CompanyOptions { customers: 60, ..CompanyOptions::default() });
        assert_eq!(generated.customers.len(), 62);
        let names: HashSet<_> = generated.customers.iter().map(|c| c.name.to_lowercase()).collect();
        assert_eq!(names.len(), 62);
        assert!(generated.customers.iter().filter(|c| !c.name.is_ascii()).count() >= 2);
        assert!(generated.customers.iter().all(|c| c.name.chars().count() <= 41));
        assert_eq!(generated.customers.iter().filter(|c| !c.is_active).count(), 2);
    }

    #[test]
    fn balances_are_the_sum_of_open_invoices() {
        let generated = generate(&CompanyOptions::default());
        for customer in &generated.customers {
            let open: i64 = generated
                .invoices
                .iter()
                .filter(|i| i.customer_list_id == customer.list_id)
                .map(Invoice::balance_remaining_cents)
                .sum();
            assert_eq!(customer.balance_cents, open, "{}", customer.name);
        }
    }

    #[test]
    fn times_and_amounts_are_written_like_the_sdk_writes_them() {
        assert_eq!(datetime(1_672_531_200), "2023-01-01T10:00:00+10:00");
        assert_eq!(datetime(1_795_370_400), "2026-11-23T04:00:00+10:00");
        assert_eq!(date(1_672_531_200 - 36_001), "2022-12-31");
        assert_eq!(money(123_450), "1234.50");
        assert_eq!(money(-5), "-0.05");
        assert_eq!(parse_money("295"), Some(29_500));
        assert_eq!(parse_money("25.5"), Some(2_550));
        assert_eq!(parse_money("x"), None);
        assert_eq!(slug("Café Müller"), "cafe-muller");
        assert_eq!(slug("Removals & Storage"), "removals-storage");
    }
}
