/**
 * The schemas the OpenAPI document names (components/schemas) and refers to with $ref wherever they
 * appear, so generated clients get one type per shape (Tenant, Key, Limit, ...) instead of anonymous
 * copies. fix-spec.ts finds them by content: the plugin inlines every schema it meets.
 */
import type { TSchema } from "@sinclair/typebox";
import { Limit, Quota, Rule } from "../../config/schema.ts";
import { CreatePortalLinkBody, PortalLink, PortalRevocation } from "../../ui/portal/model.ts";
import { AuditEntry, AuditPage } from "../audit/model.ts";
import { ClockView, MoveClockBody } from "../clock/model.ts";
import { ConfigInfo, ReloadResult } from "../config/model.ts";
import { CredentialPage, CredentialView, PutCredentialBody } from "../credentials/model.ts";
import { ExplainBody, Explanation } from "../explain/model.ts";
import { Metadata } from "../fields.ts";
import {
  CreateKeyBody,
  KeyPage,
  KeyView,
  KeyWithSecret,
  PatchKeyBody,
  RotateKeyBody,
} from "../keys/model.ts";
import { Health, Ready } from "../operations/model.ts";
import { PlanList, PlanView } from "../plans/model.ts";
import { EffectivePolicy, PolicyConcurrency, PolicyLimit, PolicyQuota, PolicyRule } from "../policy/model.ts";
import { Problem } from "../problem.ts";
import { CreditQuotaBody, QuotaState, QuotaUse, ResetQuotaBody } from "../quota/model.ts";
import { CreateTenantBody, PatchTenantBody, TenantPage, TenantView } from "../tenants/model.ts";
import { LatencySummary, UsageGroup, UsageReport } from "../usage/model.ts";

export const COMPONENTS: Record<string, TSchema> = {
  Problem,
  Tenant: TenantView,
  TenantPage,
  TenantCreate: CreateTenantBody,
  TenantUpdate: PatchTenantBody,
  Key: KeyView,
  KeyPage,
  KeyWithSecret,
  KeyCreate: CreateKeyBody,
  KeyUpdate: PatchKeyBody,
  KeyRotation: RotateKeyBody,
  Limit,
  Quota,
  Rule,
  Metadata,
  Plan: PlanView,
  PlanList,
  EffectivePolicy,
  PolicyLimit,
  PolicyQuota,
  PolicyRule,
  PolicyConcurrency,
  QuotaState,
  QuotaUse,
  QuotaReset: ResetQuotaBody,
  QuotaCredit: CreditQuotaBody,
  Credential: CredentialView,
  CredentialPage,
  CredentialPut: PutCredentialBody,
  ConfigInfo,
  ReloadResult,
  AuditEntry,
  AuditPage,
  UsageReport,
  UsageGroup,
  LatencySummary,
  ExplainRequest: ExplainBody,
  Explanation,
  Clock: ClockView,
  ClockMove: MoveClockBody,
  Health,
  Readiness: Ready,
  PortalLink,
  PortalLinkCreate: CreatePortalLinkBody,
  PortalRevocation,
};
