import { Hono } from "hono";
import { csrf } from "hono/csrf";
import type { Logger } from "pino";
import { gatherOverview, OperatorError, type OperatorSources, shortUser, stopServer } from "./overview.js";
import { operatorPage } from "./page.js";

export const OPERATOR_PATH = "/admin/operator";

/**
 * GET: the operator view; POST /stop: stop one user's server, then back to the view (303, so a
 * reload does not stop again). The caller mounts it behind the dashboard's authentication.
 */
export function operatorRoutes(sources: OperatorSources & { logger: Logger; boardPath: string }): Hono {
  const app = new Hono();
  const stopPath = `${OPERATOR_PATH}/stop`;
  // A form POST from another site would carry the operator's basic-auth credentials: only this
  // page's own origin may submit (Origin or Sec-Fetch-Site, hono/csrf).
  app.use("/stop", csrf());

  app.get("/", async (c) => {
    const stopped = c.req.query("stopped");
    const failed = c.req.query("failed");
    const notice = stopped
      ? { text: `Stopped the server of user ${stopped}; their next call starts a new one.`, error: false }
      : failed
        ? { text: failed, error: true }
        : undefined;
    const overview = await gatherOverview(sources);
    c.header("Cache-Control", "no-store");
    return c.html(operatorPage(overview, { stopPath, boardPath: sources.boardPath, ...(notice ? { notice } : {}) }));
  });

  app.post("/stop", async (c) => {
    const form = await c.req.parseBody();
    const user = typeof form.user === "string" ? form.user : "";
    try {
      const route = await stopServer(sources, user);
      sources.logger.info(
        { user: shortUser(route.userId), container: route.containerId.slice(0, 12) },
        "server stopped by an operator",
      );
      return c.redirect(`${OPERATOR_PATH}?stopped=${encodeURIComponent(shortUser(route.userId))}`, 303);
    } catch (error) {
      if (!(error instanceof OperatorError)) throw error;
      return c.redirect(`${OPERATOR_PATH}?failed=${encodeURIComponent(error.message)}`, 303);
    }
  });
  return app;
}
