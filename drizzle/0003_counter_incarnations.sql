-- Existing rows get their incarnation ids here; new rows get them from the application on insert.
ALTER TABLE `api_keys` ADD `uid` text DEFAULT '' NOT NULL;--> statement-breakpoint
UPDATE `api_keys` SET `uid` = lower(hex(randomblob(8)));--> statement-breakpoint
ALTER TABLE `tenants` ADD `uid` text DEFAULT '' NOT NULL;--> statement-breakpoint
UPDATE `tenants` SET `uid` = lower(hex(randomblob(8)));--> statement-breakpoint
-- Quota counters were keyed `tenant:<id>:<name>` and `key:<id>:<name>`; now by the incarnation and by
-- which declaration owns the name: the tenant's or key's own quota when its name is that one, else
-- the plan's (names in force for one request are unique, so the name tells them apart).
UPDATE `quota_usage` SET `scope` = 'tenant:' || t.`uid` || ':' || (
    CASE substr(`quota_usage`.`scope`, length(t.`id`) + 9)
      WHEN coalesce(
        json_extract(t.`policies`, '$.quota.name'),
        'quota-' || json_extract(t.`policies`, '$.quota.period')
          || iif(json_extract(t.`policies`, '$.quota.by') = 'key', '-by-key', '')
      ) THEN 'tenant'
      ELSE 'plan'
    END
  ) || ':' || substr(`quota_usage`.`scope`, length(t.`id`) + 9)
FROM `tenants` t
WHERE substr(`quota_usage`.`scope`, 1, length(t.`id`) + 8) = 'tenant:' || t.`id` || ':';--> statement-breakpoint
UPDATE `quota_usage` SET `scope` = 'key:' || k.`uid` || ':' || (
    CASE substr(`quota_usage`.`scope`, length(k.`id`) + 6)
      WHEN coalesce(json_extract(k.`quota`, '$.name'), 'quota-' || json_extract(k.`quota`, '$.period') || '-by-key')
        THEN 'key'
      WHEN coalesce(
        json_extract(t.`policies`, '$.quota.name'),
        'quota-' || json_extract(t.`policies`, '$.quota.period')
          || iif(json_extract(t.`policies`, '$.quota.by') = 'key', '-by-key', '')
      ) THEN 'tenant'
      ELSE 'plan'
    END
  ) || ':' || substr(`quota_usage`.`scope`, length(k.`id`) + 6)
FROM `api_keys` k JOIN `tenants` t ON t.`id` = k.`tenant_id`
WHERE substr(`quota_usage`.`scope`, 1, length(k.`id`) + 5) = 'key:' || k.`id` || ':';--> statement-breakpoint
-- What is left in the old form counted tenants and keys that no longer exist: nothing can claim it.
DELETE FROM `quota_usage` WHERE length(`scope`) - length(replace(`scope`, ':', '')) = 2;
