CREATE TABLE "api_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"uid" text NOT NULL,
	"tenant_id" text NOT NULL,
	"name" text,
	"metadata" text DEFAULT '{}' NOT NULL,
	"hash" text NOT NULL,
	"prefix" text DEFAULT '' NOT NULL,
	"last4" text DEFAULT '' NOT NULL,
	"previous_hash" text,
	"grace_until" bigint,
	"limits" text DEFAULT '[]' NOT NULL,
	"rules" text DEFAULT '[]' NOT NULL,
	"quota" text,
	"disabled" boolean DEFAULT false NOT NULL,
	"expires_at" bigint,
	"source" text NOT NULL,
	"source_ref" text,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL,
	"version" bigint NOT NULL,
	CONSTRAINT "api_keys_hash_unique" UNIQUE("hash"),
	CONSTRAINT "api_keys_previous_hash_unique" UNIQUE("previous_hash")
);
--> statement-breakpoint
CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ts" bigint NOT NULL,
	"actor" text NOT NULL,
	"action" text NOT NULL,
	"object_type" text NOT NULL,
	"object_id" text NOT NULL,
	"before" text,
	"after" text,
	"node" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "cluster_nodes" (
	"node" text PRIMARY KEY NOT NULL,
	"host" text NOT NULL,
	"pid" integer NOT NULL,
	"config_hash" text NOT NULL,
	"version" bigint NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "cluster_state" (
	"id" integer PRIMARY KEY NOT NULL,
	"cluster_id" text NOT NULL,
	"version" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "credentials" (
	"name" text PRIMARY KEY NOT NULL,
	"description" text,
	"ciphertext" "bytea" NOT NULL,
	"iv" "bytea" NOT NULL,
	"key_id" text NOT NULL,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL,
	"version" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tenants" (
	"id" text PRIMARY KEY NOT NULL,
	"uid" text NOT NULL,
	"name" text NOT NULL,
	"plan" text NOT NULL,
	"metadata" text DEFAULT '{}' NOT NULL,
	"external_ids" text DEFAULT '[]' NOT NULL,
	"upstreams" text DEFAULT '{}' NOT NULL,
	"credentials" text DEFAULT '{}' NOT NULL,
	"policies" text DEFAULT '{}' NOT NULL,
	"disabled" boolean DEFAULT false NOT NULL,
	"source" text NOT NULL,
	"source_ref" text,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL,
	"version" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tombstones" (
	"kind" text NOT NULL,
	"id" text NOT NULL,
	"version" bigint NOT NULL,
	CONSTRAINT "tombstones_kind_id_pk" PRIMARY KEY("kind","id")
);
--> statement-breakpoint
CREATE TABLE "usage" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ts" bigint NOT NULL,
	"request_id" text NOT NULL,
	"tenant_id" text,
	"key_id" text,
	"route" text,
	"method" text NOT NULL,
	"path" text NOT NULL,
	"status" integer NOT NULL,
	"outcome" text NOT NULL,
	"cost" bigint NOT NULL,
	"bytes_in" bigint NOT NULL,
	"bytes_out" bigint NOT NULL,
	"latency_ms" double precision NOT NULL,
	"upstream_ms" double precision,
	"would_refuse" text,
	"node" text NOT NULL,
	"local_id" bigint NOT NULL,
	CONSTRAINT "usage_node_row" UNIQUE("node","local_id")
);
--> statement-breakpoint
CREATE TABLE "usage_rollup" (
	"grain" bigint NOT NULL,
	"dim" text NOT NULL,
	"start" bigint NOT NULL,
	"tenant_id" text NOT NULL,
	"value" text NOT NULL,
	"requests" bigint NOT NULL,
	"errors" bigint NOT NULL,
	"cost" bigint NOT NULL,
	"bytes_in" bigint NOT NULL,
	"bytes_out" bigint NOT NULL,
	"upstream_count" bigint NOT NULL,
	"upstream_ms" double precision NOT NULL,
	"latency_min" double precision NOT NULL,
	"latency_max" double precision NOT NULL,
	"latency_hist" "bytea" NOT NULL,
	"node" text NOT NULL,
	CONSTRAINT "usage_rollup_grain_dim_tenant_id_start_value_node_pk" PRIMARY KEY("grain","dim","tenant_id","start","value","node")
);
--> statement-breakpoint
CREATE INDEX "api_keys_tenant" ON "api_keys" USING btree ("tenant_id");--> statement-breakpoint
CREATE INDEX "api_keys_version" ON "api_keys" USING btree ("version");--> statement-breakpoint
CREATE INDEX "credentials_version" ON "credentials" USING btree ("version");--> statement-breakpoint
CREATE INDEX "tenants_version" ON "tenants" USING btree ("version");--> statement-breakpoint
CREATE INDEX "tombstones_version" ON "tombstones" USING btree ("version");--> statement-breakpoint
CREATE INDEX "usage_tenant_ts" ON "usage" USING btree ("tenant_id","ts");--> statement-breakpoint
CREATE INDEX "usage_ts" ON "usage" USING btree ("ts");--> statement-breakpoint
CREATE INDEX "usage_rollup_period" ON "usage_rollup" USING btree ("grain","dim","start");