using System.Diagnostics;
using System.Globalization;
using CsCheck;
using Shim.Ttrpc.Fuzz.Targets;

namespace Shim.Ttrpc.Fuzz.Tests;

/// <summary>
/// Every parser a client's request or a broken file reaches, fed generated inputs through the same
/// targets AFL++ runs (fuzz/run.sh TARGET): request parsers (runtime options, CRI TOML, checkpoint
/// options, exec spec, stdio URIs, mount options) and recovery parsers (bootstrap, shim args, bundle
/// files, runc log, mountinfo, cgroup files). RCS_FUZZ_PARSER_INPUTS scales the counts.
/// </summary>
[Collection(FuzzCollection.Name)]
public sealed class ParserFuzzTests
{
    private static readonly double Scale =
        double.TryParse(Environment.GetEnvironmentVariable("RCS_FUZZ_PARSER_INPUTS"), NumberStyles.Float, CultureInfo.InvariantCulture, out double n) ? n / 20_000 : 1;

    /// <summary>Target name and its input count (file-writing targets run fewer).</summary>
    public static TheoryData<string, int> Targets => new()
    {
        { "runtime-options", 20_000 },
        { "config-toml", 5_000 },
        { "checkpoint-options", 20_000 },
        { "exec-spec", 20_000 },
        { "stdio-uri", 20_000 },
        { "mount-options", 20_000 },
        { "bootstrap", 20_000 },
        { "shim-args", 20_000 },
        { "bundle-files", 2_000 },
        { "runc-log", 3_000 },
        { "mountinfo", 20_000 },
        { "cgroup-files", 150 },
    };

    [Theory]
    [MemberData(nameof(Targets))]
    public void Generated_inputs_fail_only_as_documented(string target, int inputs)
    {
        var run = FuzzTargets.Create(target);
        long count = (long)(inputs * Scale);
        var clock = Stopwatch.StartNew();
        ParserGen.For(target).Sample(bytes => run.Run(bytes), iter: count, threads: 1, print: FrameGen.Hex);
        TestContext.Current.TestOutputHelper?.WriteLine($"fuzz {target}: {count} inputs in {clock.Elapsed.TotalSeconds:F1} s ({run.Covers})");
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_seed_of_the_AFL_corpus_passes(string target, int inputs)
    {
        _ = inputs;
        var run = FuzzTargets.Create(target);
        foreach (var (_, bytes) in FuzzTargets.SeedsOf(target))
        {
            run.Run(bytes);
        }
    }
}
