/**
 * Keyset pagination for list endpoints: `limit` plus an opaque `cursor` naming the last item of the
 * previous page, so pages stay stable while rows are added.
 */
import { Type as T, type TSchema } from "@sinclair/typebox";
import { t } from "elysia";
import { hasControlChar } from "./fields.ts";
import { badRequest } from "./problem.ts";

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 200;

export const pageQueryFields = {
  // Elysia's t.Integer coerces the query string; a raw TypeBox integer would refuse "10".
  limit: t.Optional(
    t.Integer({
      minimum: 1,
      maximum: MAX_PAGE,
      default: DEFAULT_PAGE,
      description: "Items per page.",
      examples: [20],
    }),
  ),
  cursor: t.Optional(
    t.String({
      pattern: "^[A-Za-z0-9_-]{1,200}$",
      description: "nextCursor from the previous page.",
    }),
  ),
};

export const PageQuery = t.Object(pageQueryFields, { additionalProperties: false });

export const Page = <S extends TSchema>(item: S, description: string) =>
  T.Object(
    {
      items: T.Array(item),
      nextCursor: T.Union([T.String(), T.Null()], { description: "Pass as cursor for the next page." }),
    },
    { description },
  );

export const encodeCursor = (last: string | number) => Buffer.from(String(last)).toString("base64url");

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  if (!text || hasControlChar(text)) throw badRequest("The cursor is not one this API issued.");
  return text;
}

/** Fetches limit + 1 rows to learn whether another page exists. */
export function pageOf<R, V>(rows: R[], limit: number, view: (r: R) => V, key: (r: R) => string | number) {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  return {
    items: items.map(view),
    nextCursor: more && items.length ? encodeCursor(key(items[items.length - 1]!)) : null,
  };
}
