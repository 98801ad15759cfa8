using Shim.Core.Stdio;
using Shim.Os;
using Shim.Os.Io;

namespace Shim.Core.Tests.Stdio;

/// <summary>The stdio context of the unit tests: a loop of their own (not the shim's shared one), the one reaper, the real clock.</summary>
internal static class TestStdio
{
    private static readonly Lazy<StdioContext> Shared = new(() => new StdioContext(new IoLoop("test-io-loop"), Reaper.Instance, TimeProvider.System));

    /// <summary>One per test run; a test that needs to own its loop or its clock makes its own context.</summary>
    public static StdioContext Context => Shared.Value;
}
