/**
 * The control API's side of the tenant portal: mint a one-time sign-in link for a tenant (what a
 * SaaS's own web app calls, then redirects its customer to the URL), and end every link and portal
 * session of a tenant at once.
 */
import { Type as T } from "@sinclair/typebox";
import { Elysia } from "elysia";
import { actorOf } from "../../admin/client-ip.ts";
import { iso, TenantIdParams } from "../../admin/fields.ts";
import { badRequest, conflict, notFound, responses } from "../../admin/problem.ts";
import type { AdminStore } from "../../admin/store.ts";
import { parseDuration } from "../../config/units.ts";
import { DEFAULT_LINK_TTL_MS, MAX_LINK_TTL_MS, type PortalLinks } from "../sessions/links.ts";
import type { SessionStore } from "../sessions/store.ts";
import { CreatePortalLinkBody, PortalLink, PortalRevocation } from "./model.ts";

export interface PortalLinksDeps {
  store: AdminStore;
  links: PortalLinks;
  sessions: SessionStore;
  /** The portal's address as browsers reach it; null while no portal listens. */
  portalUrl: () => string | null;
}

const tags = ["portal"];
const MIN_TTL_MS = 60_000;

export function portalLinksPlugin(deps: PortalLinksDeps) {
  const tenantOf = (id: string) => {
    const tenant = deps.store.state.snapshot.tenants.get(id);
    if (!tenant) throw notFound(`No tenant with id "${id}".`);
    return tenant;
  };
  const audit = (action: string, id: string, request: Request, after: Record<string, unknown>) =>
    deps.store.database.db.transaction((tx) =>
      deps.store.audit.record(tx, {
        actor: actorOf(request),
        action,
        objectType: "tenant",
        objectId: id,
        after,
      }),
    );
  return new Elysia({ name: "portal-links", normalize: false })
    .post(
      "/tenants/:id/portal-links",
      ({ params, body, request, status }) => {
        const tenant = tenantOf(params.id);
        const base = deps.portalUrl();
        if (base === null) {
          throw conflict(
            "No tenant portal listens: set server.portal (HOST:PORT) in gateway.yaml and restart.",
          );
        }
        if (tenant.disabled) throw conflict(`Tenant "${tenant.id}" is disabled; enable it first.`);
        const ttl = body?.expiresIn === undefined ? DEFAULT_LINK_TTL_MS : parseDuration(body.expiresIn);
        if (ttl < MIN_TTL_MS || ttl > MAX_LINK_TTL_MS) throw badRequest("expiresIn must be from 1m to 24h.");
        const { token, expiresAt } = deps.links.mint(tenant.id, ttl);
        audit("portal.link", tenant.id, request, { expiresAt: iso(expiresAt) });
        return status(201, { tenant: tenant.id, url: `${base}/sign-in#${token}`, expiresAt: iso(expiresAt) });
      },
      {
        parse: "json",
        params: TenantIdParams,
        body: T.Optional(CreatePortalLinkBody),
        response: responses({ 201: PortalLink }, [400, 404, 409, 413]),
        detail: {
          summary: "Create a portal sign-in link",
          operationId: "createPortalLink",
          description:
            "A one-time link that signs its opener in to the tenant portal as this tenant, where it manages " +
            "its own keys and reads its usage, quotas, limits and API docs. Give it to the tenant's user " +
            "(redirect them to it); it works once, until it expires. 409 when no portal listens " +
            "(server.portal) or the tenant is disabled.",
          tags,
        },
      },
    )
    .delete(
      "/tenants/:id/portal-sessions",
      ({ params, request }) => {
        const id = tenantOf(params.id).id;
        const revoked = {
          tenant: id,
          links: deps.links.revokeTenant(id),
          sessions: deps.sessions.endTenant(id),
        };
        audit("portal.revoke", id, request, { links: revoked.links, sessions: revoked.sessions });
        return revoked;
      },
      {
        params: TenantIdParams,
        response: responses({ 200: PortalRevocation }, [400, 404]),
        detail: {
          summary: "Revoke portal links and sessions",
          operationId: "revokePortalSessions",
          description:
            "Every unused sign-in link of the tenant stops working and every portal session it has ends, " +
            "from the next request on.",
          tags,
        },
      },
    );
}
