import { createMemoryStore } from '@jailkeeper/core';
import { storeConformance } from '@jailkeeper/core/testing';

storeConformance('memory', { make: () => createMemoryStore() });
