// Imports every domain file of the GraphQL layer and builds the schema.
import { builder } from './builder.js';
import './scalars.js';
import './errors.js';
import './accounts.js';
import './org.js';
import './policies.js';
import './jobs.js';
import './queue.js';
import './auth.js';
import './billing.js';
import './audit.js';
import './custody.js';
import './identity.js';
import './overruns.js';
import './callbacks.js';
import './live.js';
import './forecasts.js';
import './notifications.js';
import './money-events.js';
import './budget-requests.js';
import './tags.js';

export const schema = builder.toSchema({ sortSchema: true });
