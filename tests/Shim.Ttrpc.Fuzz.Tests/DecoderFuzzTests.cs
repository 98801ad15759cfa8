using System.Diagnostics;
using System.Globalization;
using CsCheck;

namespace Shim.Ttrpc.Fuzz.Tests;

/// <summary>
/// The bulk of the fuzzing: a million generated inputs decoded with the server's own rules and
/// dispatched to the real task service, in process (no sockets). RCS_FUZZ_INPUTS overrides the count.
/// </summary>
[Collection(FuzzCollection.Name)]
public sealed class DecoderFuzzTests
{
    private static readonly long Inputs =
        long.TryParse(Environment.GetEnvironmentVariable("RCS_FUZZ_INPUTS"), NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : 1_000_000;

    [Fact]
    public void A_million_random_and_mutated_inputs_decode_and_dispatch_without_a_crash_or_a_hang()
    {
        using var targets = new ThreadLocal<FuzzTarget>(() => new FuzzTarget(), trackAllValues: true);
        var clock = Stopwatch.StartNew();
        FrameGen.Input.Sample(bytes => { targets.Value!.Run(bytes); }, iter: Inputs, threads: 2, print: FrameGen.Hex);
        clock.Stop();

        var all = targets.Values;
        long inputs = all.Sum(t => t.Inputs), rejected = all.Sum(t => t.Rejections), dispatched = all.Sum(t => t.Dispatches), invoked = all.Sum(t => t.Invoked);
        var byMethod = all.SelectMany(t => t.InvokedByMethod).GroupBy(kv => kv.Key).ToDictionary(g => g.Key, g => g.Sum(kv => kv.Value));
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"fuzz decoder: {inputs} inputs in {clock.Elapsed.TotalSeconds:F1} s ({inputs / clock.Elapsed.TotalSeconds:F0}/s); " +
            $"{rejected} frames rejected, {dispatched} calls dispatched, {invoked} handlers invoked");
        TestContext.Current.TestOutputHelper?.WriteLine(
            "fuzz decoder: handlers invoked per method: " + string.Join(", ", byMethod.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}")));

        Assert.True(inputs >= Inputs, $"only {inputs} of {Inputs} inputs ran");
        // the generator must reach every layer, or the run proves little
        Assert.True(rejected > inputs / 10, $"only {rejected} rejections in {inputs} inputs");
        Assert.True(invoked > inputs / 10, $"only {invoked} handler invocations in {inputs} inputs");
        foreach (string method in FrameBuilder.Methods.Where(m => m != FuzzTaskService.NeverInvoked))
        {
            Assert.True(byMethod.GetValueOrDefault(method) > 0, $"{method} was never invoked");
        }
    }

    [Fact]
    public void Every_seed_of_the_AFL_corpus_decodes_without_a_crash()
    {
        var target = new FuzzTarget();
        foreach (var (name, bytes) in FrameBuilder.Seeds())
        {
            var end = target.Run(bytes);
            Assert.True(end is StreamEnd.Clean or StreamEnd.InsidePayload, $"{name}: {end}");
        }

        Assert.True(target.Invoked >= 2 * (FrameBuilder.Methods.Count - 1), $"{target.Invoked} handlers invoked");
    }
}

/// <summary>Fuzz tests run one after the other: each wants both cores.</summary>
[CollectionDefinition(Name)]
public sealed class FuzzCollection
{
    public const string Name = "fuzz";
}
