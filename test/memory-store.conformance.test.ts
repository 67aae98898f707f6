import { createMemoryStore } from '@jailkeeper/core';
import { storeConformance } from './store-conformance.js';

storeConformance('memory', { make: () => createMemoryStore() });
