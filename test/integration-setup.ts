// Integration and end-to-end tests start real services and Chromium: allow them time.
jest.setTimeout(60_000);
