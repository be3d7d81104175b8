/** The forwarded query: keys and tokens never cross, whatever the parameter is called; all else byte for byte. */
import { expect, test } from "bun:test";
import { forwardedQuery } from "../../src/gateway/query.ts";

const JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";

test("parameters named like a key or a token are removed", () => {
  for (const name of ["api_key", "access_token", "ID_TOKEN", "refresh_token", "jwt", "JWT", "%6Awt"]) {
    expect(forwardedQuery(`a=1&${name}=x&b=2`, null)).toBe("a=1&b=2");
  }
});

test("a JWT under any name, alone or after a scheme, is removed; other values pass as sent", () => {
  expect(forwardedQuery(`t=${JWT}&q=a%20b`, null)).toBe("q=a%20b");
  expect(forwardedQuery(`auth=Bearer%20${JWT}&q=1`, null)).toBe("q=1");
  expect(forwardedQuery(`t=${JWT.slice(0, JWT.lastIndexOf("."))}.&q=1`, null)).toBe("q=1");
  expect(forwardedQuery("q=eyJ&page=2.5.1&x=a.b.c", null)).toBe("q=eyJ&page=2.5.1&x=a.b.c");
});
