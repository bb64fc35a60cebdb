//! OpenAPI schemas for types whose wire form is one of a fixed list of
//! words (`mgt`, `target=`): the schema is built from the same list the
//! parser accepts, so the document cannot name a value the API refuses.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

/// A schema written as JSON (what the document shows, checked to parse).
pub fn from_json(v: serde_json::Value) -> RefOr<Schema> {
    RefOr::T(serde_json::from_value(v).expect("a valid schema"))
}

/// `{"type": "string", "enum": values}`.
pub fn words(values: &[&str], description: &str) -> RefOr<Schema> {
    let mut v = serde_json::json!({"type": "string", "enum": values});
    if !description.is_empty() {
        v["description"] = description.into();
    }
    from_json(v)
}

/// A comma-separated list of `values` (`?fields=name,mgt`): an array of
/// the words, sent as one form-style query value (`explode: false`).
pub fn word_list(values: &[&str], description: &str) -> RefOr<Schema> {
    let v = serde_json::json!({"type": "array", "items": {"type": "string", "enum": values},
                               "minItems": 1, "description": description});
    from_json(v)
}

/// Implements `utoipa::ToSchema` for `$ty` from its list of accepted words.
#[macro_export]
macro_rules! word_schema {
    ($ty:ty, $values:expr, $description:expr) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::schema::words($values, $description)
            }
        }
        impl utoipa::ToSchema for $ty {}
    };
}
