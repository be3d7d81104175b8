/**
 * The config `gatehouse init` writes: the shape of the shipped gateway.yaml, commented, serving at
 * once and offline (a built-in upstream), with one key whose secret init prints and the file holds
 * only as a hash. A test validates and serves what this produces.
 */
export const SCHEMA_FILE = "gateway.schema.json";

export function starterConfig(keyHash: string): string {
  return `# yaml-language-server: $schema=./${SCHEMA_FILE}
# gatehouse configuration, written by \`gatehouse init\`. ${SCHEMA_FILE} beside it describes every
# key (editors with the YAML language server read it through the line above). Check this file with
# \`gatehouse validate\`, see what a reload would change with \`gatehouse diff\`, and serve it with
# \`gatehouse serve\`. Unknown keys and values are errors, never ignored.
version: 1
server:
  listen: 127.0.0.1:8080          # data plane; GATEHOUSE_LISTEN or --listen override it
  admin: 127.0.0.1:8081           # control API; GATEHOUSE_ADMIN or --admin override it
  # A control API beyond loopback needs a token: set GATEHOUSE_ADMIN_TOKEN, or
  # adminToken: \${ADMIN_TOKEN}   # \${VAR} reads the environment; \${VAR:-default} has a default
database: ./gatehouse.db          # SQLite; ":memory:" for an ephemeral run; GATEHOUSE_DB or --db override it

upstreams:
  sandbox: { mock: echo }         # built-in: answers with the request it received, as JSON
  # api:
  #   url: http://127.0.0.1:9000  # the request's canonical path and query are appended
  #   timeout: 30s                # to the first response byte, else 504
  #   headers: { authorization: "Bearer \${API_TOKEN}" }   # injected; tenants never see it

plans:
  starter:
    limits:                       # sliding windows, counted per tenant; every one must pass
      - { limit: 10, window: 1s }
      - { limit: 1000, window: 1h, by: key }
    quota: { limit: 100000, period: month }   # cost units per calendar month; survives restarts
    rules:                        # default deny: some allow must match and no deny
      - allow: "* /v1/**"
      - deny: "* /v1/admin/**"

routes:                           # the most specific pattern wins; METHODS PATH, * one segment, ** the rest
  - match: "* /v1/**"
    upstream: sandbox

tenants:
  example:
    name: Example Inc
    plan: starter
    keys:
      # \`gatehouse init\` printed this key's secret once; the file keeps only its hash.
      # \`gatehouse hash-key\` makes the hash of a secret of your own.
      - { id: example-dev, hash: "${keyHash}" }
`;
}
