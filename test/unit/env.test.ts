import { describe, expect, it } from 'vitest';
import { graphiqlFrom, limitsFrom, readEnv } from '../../src/env.js';
import { DEFAULT_LIMITS } from '../../src/limits/limits.js';

describe('configuration', () => {
  it('defaults: auth on, every limit at its default, GraphiQL and introspection on', () => {
    const env = readEnv({});
    expect(env.RUNSTATE_AUTH).toBe('on');
    expect(env.HOST).toBeUndefined();
    expect(limitsFrom(env)).toEqual(DEFAULT_LIMITS);
    expect(graphiqlFrom(env)).toBe(true);
  });

  it('NODE_ENV=production turns GraphiQL and introspection off unless set explicitly', () => {
    const production = readEnv({ NODE_ENV: 'production' });
    expect(limitsFrom(production).introspection).toBe(false);
    expect(graphiqlFrom(production)).toBe(false);
    const explicit = readEnv({ NODE_ENV: 'production', INTROSPECTION: 'true', GRAPHIQL: 'true' });
    expect(limitsFrom(explicit).introspection).toBe(true);
    expect(graphiqlFrom(explicit)).toBe(true);
  });

  it('each limit is read from its variable', () => {
    const env = readEnv({
      MAX_DEPTH: '7',
      MAX_ALIASES: '8',
      MAX_DIRECTIVES: '9',
      MAX_COST: '1000',
      MAX_TOKENS: '500',
      MAX_BODY_BYTES: '4096',
      MAX_WS_FRAME_BYTES: '8192',
      MAX_SUBSCRIPTIONS_PER_CONNECTION: '3',
      MAX_SUBSCRIPTIONS_PER_TOKEN: '4',
      MUTATION_RATE_LIMIT: '0',
      MUTATION_BURST: '5',
    });
    expect(limitsFrom(env)).toEqual({
      maxDepth: 7,
      maxAliases: 8,
      maxDirectives: 9,
      maxCost: 1000,
      maxTokens: 500,
      maxBodyBytes: 4096,
      maxWsFrameBytes: 8192,
      maxSubscriptionsPerConnection: 3,
      maxSubscriptionsPerToken: 4,
      mutationsPerSecond: 0,
      mutationBurst: 5,
      introspection: true,
    });
  });

  it('refuses a weak admin token, an unknown auth mode and a limit out of range', () => {
    expect(() => readEnv({ RUNSTATE_ADMIN_TOKEN: 'short' })).toThrow(/RUNSTATE_ADMIN_TOKEN/);
    expect(() => readEnv({ RUNSTATE_AUTH: 'maybe' })).toThrow(/RUNSTATE_AUTH/);
    expect(() => readEnv({ MAX_DEPTH: '0' })).toThrow(/MAX_DEPTH/);
  });

  it('takes a DATABASE_URL with several hosts, and CORS origins as a list', () => {
    const env = readEnv({
      DATABASE_URL: 'postgres://u:p@10.0.0.1:5432,10.0.0.2:5433/db?target_session_attrs=read-write',
      CORS_ORIGINS: 'https://ops.example.com, http://localhost:3000',
    });
    expect(env.DATABASE_URL).toContain('10.0.0.2:5433');
    expect(env.CORS_ORIGINS).toEqual(['https://ops.example.com', 'http://localhost:3000']);
    expect(() => readEnv({ DATABASE_URL: 'mysql://h/db' })).toThrow(/DATABASE_URL/);
    expect(() => readEnv({ CORS_ORIGINS: 'ops.example.com' })).toThrow(/CORS_ORIGINS/);
    expect(() => readEnv({ CORS_ORIGINS: 'https://ops.example.com/path' })).toThrow(/CORS_ORIGINS/);
  });
});
