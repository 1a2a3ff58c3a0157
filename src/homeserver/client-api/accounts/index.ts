/**
 * Routes of the accounts area of the client-server API: server discovery and
 * capabilities, registration, login and logout, devices, profiles, account
 * data and tags, push rules, filters, presence, account management and the
 * user directory. The
 * logic they share lives in ../../accounts/.
 */
import type { RouteModule } from '../../services.js';
import { accountRoutes } from './account.js';
import { accountDataRoutes } from './account-data.js';
import { createAccountsDeps } from './common.js';
import { deviceRoutes } from './devices.js';
import { filterRoutes } from './filters.js';
import { loginRoutes } from './login.js';
import { presenceRoutes } from './presence.js';
import { profileRoutes } from './profile.js';
import { pushRuleRoutes } from './push-rules.js';
import { registerRoutes } from './register.js';
import { serverInfoRoutes } from './server-info.js';
import { userDirectoryRoutes } from './user-directory.js';

export const accountsRoutes: RouteModule = (services) => {
  const deps = createAccountsDeps(services);
  return [
    ...serverInfoRoutes(deps),
    ...registerRoutes(deps),
    ...loginRoutes(deps),
    ...deviceRoutes(deps),
    ...profileRoutes(deps),
    ...accountDataRoutes(deps),
    ...pushRuleRoutes(deps),
    ...filterRoutes(deps),
    ...presenceRoutes(deps),
    ...accountRoutes(deps),
    ...userDirectoryRoutes(deps),
  ];
};
