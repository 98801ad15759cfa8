namespace Shim.E2E.Tests;

/// <summary>
/// Waits for a state that nothing announces (a process gone from /proc, CRI's view of a pod after
/// its own event loop ran): checked every 100 ms until it holds, failing with <c>why</c> at the deadline.
/// </summary>
internal static class E2EPoll
{
    public static Task UntilAsync(Func<bool> condition, TimeSpan deadline, string why, CancellationToken ct) =>
        UntilAsync(() => Task.FromResult(condition()), deadline, why, ct);

    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan deadline, string why, CancellationToken ct)
    {
        var until = DateTime.UtcNow + deadline;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < until, why);
            await Task.Delay(100, ct);
        }
    }
}
