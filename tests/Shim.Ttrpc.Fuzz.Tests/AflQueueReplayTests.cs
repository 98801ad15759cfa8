using Shim.Ttrpc.Fuzz.Targets;

namespace Shim.Ttrpc.Fuzz.Tests;

/// <summary>
/// The inputs AFL++ kept (fuzz/findings/TARGET/default/queue), replayed through their targets when
/// RCS_FUZZ_FINDINGS names that directory: fuzz/coverage.sh --afl runs only this, so its report is
/// the coverage AFL reached. A kept input is one that passed under AFL, so each must pass here too.
/// The category is left out of the normal run (scripts/test.sh): without AFL's queues there is nothing to replay.
/// </summary>
[Collection(FuzzCollection.Name)]
[Trait("Category", "AflReplay")]
public sealed class AflQueueReplayTests
{
    /// <summary>The targets that run in process without a server or containers of their own.</summary>
    public static TheoryData<string> Targets => new(
        [.. ParserFuzzTests.Targets.Select(row => row.Data.Item1), "frames", "client-responses"]);

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_input_AFL_kept_in_its_queue_passes(string target)
    {
        string? findings = Environment.GetEnvironmentVariable("RCS_FUZZ_FINDINGS");
        string queue = Path.Combine(findings ?? "", target, "default", "queue");
        Assert.True(findings is not null, "RCS_FUZZ_FINDINGS is not set: run this through fuzz/coverage.sh --afl");
        Assert.True(Directory.Exists(queue), $"no AFL queue at {queue}: run fuzz/run.sh SECONDS {target} first");
        var run = FuzzTargets.Create(target);
        string[] inputs = Directory.GetFiles(queue);
        foreach (string file in inputs)
        {
            try
            {
                run.Run(File.ReadAllBytes(file));
            }
            catch (FuzzFailure ex)
            {
                Assert.Fail($"{file}: {ex}");
            }
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"replayed {inputs.Length} inputs of {queue}");
    }
}
