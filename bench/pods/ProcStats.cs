using System.Globalization;

namespace Shim.E2E.Tests.Cri;

/// <summary>What the pod benches read of a process from /proc, and the statistics they report.</summary>
internal static class ProcStats
{
    /// <summary>USER_HZ on Linux: the unit of /proc/stat and /proc/&lt;pid&gt;/stat times.</summary>
    public const long ClockTicksPerSecond = 100;

    /// <summary>Proportional set size in KiB (smaps_rollup), 0 for a process that is gone.</summary>
    public static long PssKiB(int pid) => StatusLikeKiB($"/proc/{pid}/smaps_rollup", "Pss:");

    /// <summary>User + system CPU of the whole process so far, in ms; 0 when it is gone.</summary>
    public static double CpuMs(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            string[] f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // fields 14 and 15 of stat(5), counted from the state field (3)
            return (long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture)) * 1000.0 / ClockTicksPerSecond;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>Threads of the process (its task directories).</summary>
    public static int Threads(int pid) => Count($"/proc/{pid}/task");

    /// <summary>Open descriptors of the process.</summary>
    public static int Fds(int pid) => Count($"/proc/{pid}/fd");

    /// <summary>Context switches of every thread of the process so far (voluntary and not): its wake-ups.</summary>
    public static long ContextSwitches(int pid)
    {
        long sum = 0;
        try
        {
            foreach (string task in Directory.GetDirectories($"/proc/{pid}/task"))
            {
                foreach (string line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal) || line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                    {
                        sum += long.Parse(line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim(), CultureInfo.InvariantCulture);
                    }
                }
            }
        }
        catch (IOException)
        {
            // gone, or a thread gone between listing and reading
        }
        return sum;
    }

    public static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    public static double Percentile(IEnumerable<double> values, double p)
    {
        var v = values.Order().ToArray();
        return v.Length == 0 ? double.NaN : v[Math.Clamp((int)Math.Ceiling(p * v.Length) - 1, 0, v.Length - 1)];
    }

    private static int Count(string dir)
    {
        try
        {
            return Directory.EnumerateFileSystemEntries(dir).Count();
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static long StatusLikeKiB(string file, string key)
    {
        try
        {
            string? line = File.ReadLines(file).FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
