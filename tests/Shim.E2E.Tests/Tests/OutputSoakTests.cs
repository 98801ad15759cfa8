using System.Diagnostics;
using System.Security.Cryptography;

namespace Shim.E2E.Tests;

/// <summary>Output at volume (issue 6): a gibibyte through the shim, hashed as it streams by.</summary>
[Trait("Category", "Soak")]
[Collection(nameof(SoakCollection))]
public sealed class OutputSoakTests : E2ETest
{
    private const long OneGiB = 1024L * 1024 * 1024;

    [Fact]
    public async Task One_GiB_of_stdout_arrives_bit_exact()
    {
        var expecting = Task.Run(() => NumberedLines.ExpectedSha256(OneGiB), Ct);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var clock = Stopwatch.StartNew();
        await using var run = StartCtr(RunArgs("gib", detach: false, "sh", "-c", NumberedLines.Command(OneGiB)));

        long got = await NumberedLines.ReadIntoAsync(run.Stdout, hash, long.MaxValue, Ct).WaitAsync(TimeSpan.FromSeconds(170), Ct);
        int exit = await run.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        clock.Stop();
        Log($"1 GiB through ctr run in {clock.Elapsed.TotalSeconds:F1} s ({got / clock.Elapsed.TotalSeconds / (1 << 20):F0} MiB/s)");

        Assert.True(exit == 0, $"ctr run exited {exit}; stderr: {run.Stderr}");
        Assert.Equal(OneGiB, got);
        Assert.Equal(await expecting, Convert.ToHexString(hash.GetHashAndReset()));
    }
}
