// Loaded by jest before every test file (jest.preset.cjs `setupFiles`).
// Ryuk, testcontainers' clean-up helper, is an image that cannot be pulled on machines without a
// registry; every test stops what it starts in afterAll instead.
process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
