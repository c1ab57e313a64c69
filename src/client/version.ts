/**
 * The client package's version (its User-Agent, `pollgate-client --version`). A constant rather
 * than a read of package.json: the same code runs as ES module and as CommonJS, where no
 * module-relative path is the same. test/client-package.test.ts keeps it equal to package.json.
 */
export const CLIENT_VERSION = '0.1.0';
