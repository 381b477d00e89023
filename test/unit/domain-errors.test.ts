import { GraphQLError } from 'graphql';
import { expect, it } from 'vitest';
import {
  BadUserInputError,
  DomainError,
  ForbiddenError,
  NotFoundError,
  RateLimitedError,
  StaleAttemptError,
  UnauthenticatedError,
} from '../../src/errors.js';
import { domainErrorOf, toGraphQLError } from '../../src/graphql/domain-errors.js';

it('domain errors are plain errors that know nothing of GraphQL', () => {
  for (const error of [
    new BadUserInputError('input.progress', 'must be in [0, 1]'),
    new NotFoundError('run', 'r1'),
    new StaleAttemptError('r1', 2, 1),
    new UnauthenticatedError(),
    new ForbiddenError('createApiToken', 'ADMIN'),
    new RateLimitedError(3),
  ]) {
    expect(error).toBeInstanceOf(DomainError);
    expect(error).not.toBeInstanceOf(GraphQLError);
  }
});

it('the GraphQL layer names each kind with its code, details and HTTP status', () => {
  const wire = (error: DomainError) => toGraphQLError(error).toJSON();
  expect(wire(new BadUserInputError('input.progress', 'must be in [0, 1]'))).toEqual({
    message: 'input.progress: must be in [0, 1]',
    extensions: { code: 'BAD_USER_INPUT', field: 'input.progress' },
  });
  expect(wire(new NotFoundError('run', 'r1')).extensions).toEqual({ code: 'NOT_FOUND', id: 'r1' });
  expect(wire(new StaleAttemptError('r1', 2, 1)).extensions).toEqual({
    code: 'STALE_ATTEMPT',
    actualAttempt: 2,
  });
  expect(wire(new ForbiddenError('x', 'ADMIN')).extensions).toEqual({
    code: 'FORBIDDEN',
    requiredRole: 'ADMIN',
  });
  expect(toGraphQLError(new UnauthenticatedError()).extensions).toEqual({
    code: 'UNAUTHENTICATED',
    http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="runstate"' } },
  });
  expect(toGraphQLError(new RateLimitedError(3)).extensions).toEqual({
    code: 'RATE_LIMITED',
    retryAfter: 3,
    http: { status: 429, headers: { 'Retry-After': '3' } },
  });
});

it('finds the domain error behind the error graphql-js made of it, and keeps where it happened', () => {
  const original = new NotFoundError('run', 'r1');
  const located = new GraphQLError(original.message, { path: ['run'], originalError: original });
  expect(domainErrorOf(located)).toBe(original);
  expect(domainErrorOf(new Error('boom'))).toBeNull();
  expect(toGraphQLError(original, located).path).toEqual(['run']);
});
