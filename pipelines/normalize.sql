-- Per-record normalization: decoded raw records (table `raw`) → canonical complaint columns.
-- Stateless, so any worker can run it on any batch. UDFs are registered in src/engine/mod.rs;
-- the stateful columns (duplicate_of/group, issue_id, flags; dropping re-delivered complaint ids)
-- are set afterwards by the keyed operators in src/engine/rules.rs.
WITH n AS (
  SELECT
    channel,
    source_id,
    version,
    received_at,
    fetched_at,
    mask_personal(normalize_text(coalesce(title, '')), name) AS title_n,
    mask_personal(normalize_text(body), name) AS body_n,
    name,
    phone,
    user_id,
    district AS district_raw,
    mask_phones(normalize_text(coalesce(address, ''))) AS address_n,
    category,
    status,
    likes,
    handling_unit,
    mask_personal(normalize_text(reply), name) AS reply_n,
    reply_unit,
    replied_at
  FROM raw
),
p AS (
  SELECT
    n.*,
    canonical_district(district_raw, concat(address_n, ' ', title_n, ' ', body_n)) AS district,
    coalesce(place(concat(title_n, ' ', body_n)), place(address_n)) AS place,
    classify(title_n, body_n) AS classified
  FROM n
)
SELECT
  complaint_id(channel, source_id) AS complaint_id,
  channel,
  source_id,
  received_at,
  fetched_at,
  derive_title(title_n, body_n) AS title,
  body_n AS body,
  pseudonym(channel, phone, user_id, name) AS complainant,
  mask_phone(phone) AS phone_masked,
  district,
  CASE WHEN address_n <> '' THEN address_n ELSE place END AS address,
  split_part(classified, '|', 1) AS domain,
  CAST(split_part(classified, '|', 2) AS DOUBLE) AS domain_confidence,
  split_part(classified, '|', 3) AS classifier_version,
  normalize_text(category) AS source_category,
  normalize_text(status) AS source_status,
  likes,
  content_hash(body_n) AS content_hash,
  place,
  version AS source_version,
  normalize_text(handling_unit) AS handling_unit,
  reply_n AS reply_text,
  normalize_text(reply_unit) AS reply_unit,
  replied_at
FROM p
