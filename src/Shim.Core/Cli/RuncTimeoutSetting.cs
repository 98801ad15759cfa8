using System.Globalization;

namespace Shim.Core.Cli;

/// <summary>
/// <c>RUNCSHARP_RUNC_TIMEOUT=&lt;seconds&gt;</c> in the shim's environment: how long a short runc call
/// (kill, ps, pause, resume, update, exec) may run before the shim kills it. containerd starts its
/// shims with its own environment, so the variable is set on the daemon. create, start, delete,
/// checkpoint and restore never have a watchdog, whatever this says.
/// </summary>
public static class RuncTimeoutSetting
{
    /// <summary>The environment variable's name.</summary>
    public const string Variable = "RUNCSHARP_RUNC_TIMEOUT";

    // CancellationTokenSource.CancelAfter takes at most int.MaxValue milliseconds (~24.8 days)
    private static readonly TimeSpan Longest = TimeSpan.FromMilliseconds(int.MaxValue);

    /// <summary>
    /// The timeout <paramref name="value"/> gives (seconds, decimals allowed: "2", "0.5"), or null
    /// when it is unset or not usable; then <paramref name="problem"/> says why (null when unset).
    /// </summary>
    public static TimeSpan? Parse(string? value, out string? problem)
    {
        problem = null;
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }
        if (!double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double seconds))
        {
            problem = "not a number of seconds";
            return null;
        }
        if (seconds * 1000 < 1)
        {
            problem = "under a millisecond";
            return null;
        }
        if (seconds > Longest.TotalSeconds)
        {
            problem = $"over {Longest.TotalSeconds:0} s";
            return null;
        }
        return TimeSpan.FromSeconds(seconds);
    }
}
