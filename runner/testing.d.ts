export * from './dist/local/test-kit';
