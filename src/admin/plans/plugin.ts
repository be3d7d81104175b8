import { Elysia } from "elysia";
import { responses } from "../problem.ts";
import { PlanList } from "./model.ts";
import type { PlanService } from "./service.ts";

export const plansPlugin = (plans: PlanService) =>
  new Elysia({ normalize: false }).get("/plans", () => plans.list(), {
    response: responses({ 200: PlanList }),
    detail: {
      summary: "List plans",
      description:
        "Every plan of the config in force with its limits, quota, rules and concurrency as declared, each " +
        "with where it is declared, and how many tenants are on it. Plans are declared in the config file only.",
      operationId: "listPlans",
      tags: ["plans"],
    },
  });
