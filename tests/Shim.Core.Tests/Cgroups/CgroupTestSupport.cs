using System.Globalization;
using Shim.Os;
using Shim.Os.Notify;

namespace Shim.Core.Tests.Cgroups;

/// <summary>A temp directory the tests fill with cgroup-like files; removed on dispose.</summary>
internal sealed class FixtureTree : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("rcs-cgroup-fixture-").FullName;

    public string PathOf(string relative) => Path.Join(Root, relative);

    /// <summary>Writes (truncating in place, as the kernel's files change) and returns the full path.</summary>
    public string Write(string relative, string content)
    {
        string path = PathOf(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Real cgroup v1 groups /sys/fs/cgroup/&lt;controller&gt;/rcs-test-&lt;guid&gt;; dispose kills their processes and removes them.</summary>
internal sealed class LiveCgroupV1 : IDisposable
{
    private readonly string[] _controllers;

    public LiveCgroupV1(params string[] controllers)
    {
        _controllers = controllers;
        Name = "rcs-test-" + Guid.NewGuid().ToString("N");
        try
        {
            foreach (var controller in controllers)
            {
                Directory.CreateDirectory(Dir(controller));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Name { get; }

    public string Path => "/" + Name;

    public string Dir(string controller) => System.IO.Path.Join(CgroupPrereqs.Root, controller, Name);

    public bool Has(string controller, string file) => File.Exists(System.IO.Path.Join(Dir(controller), file));

    public void Write(string controller, string file, string value) =>
        File.WriteAllText(System.IO.Path.Join(Dir(controller), file), value);

    /// <summary>Moves the process into every controller's group.</summary>
    public void Add(int pid)
    {
        foreach (var controller in _controllers)
        {
            Write(controller, "cgroup.procs", pid.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Removes the groups (no processes may be left); used to test cgroup removal.</summary>
    public void Remove()
    {
        foreach (var controller in _controllers)
        {
            RemoveOne(Dir(controller));
        }
    }

    public void Dispose()
    {
        foreach (var controller in _controllers)
        {
            string dir = Dir(controller);
            if (!Directory.Exists(dir))
            {
                continue;
            }
            try
            {
                KillAll(dir);
                RemoveOne(dir);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // best effort; a leftover empty group is harmless and named for the test
            }
        }
    }

    private static void KillAll(string dir)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            var pids = File.ReadAllLines(System.IO.Path.Join(dir, "cgroup.procs")).Where(l => l.Length > 0).ToArray();
            if (pids.Length == 0)
            {
                return;
            }
            foreach (var pid in pids)
            {
                Signals.Kill(int.Parse(pid, CultureInfo.InvariantCulture), Signals.SIGKILL);
            }
            Thread.Sleep(20);   // the reaper reaps them; cleanup only, not a test wait
        }
    }

    private static void RemoveOne(string dir)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            try
            {
                Directory.Delete(dir);   // rmdir(2): cgroup directories hold only virtual files
                return;
            }
            catch (DirectoryNotFoundException)
            {
                return;
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(20);   // EBUSY until exited tasks are gone
            }
        }
    }
}

/// <summary>Live cgroup tests need root and a cgroup v1 memory hierarchy; they skip without, and fail under CI (true or 1, as scripts/test.sh reads it).</summary>
internal static class CgroupPrereqs
{
    public const string Root = "/sys/fs/cgroup";

    public static void RequireV1Root()
    {
        var missing = new List<string>();
        if (Environment.UserName != "root" && !IsRootUid())
        {
            missing.Add("root");
        }
        if (FileSystems.TryGetMagic(Path.Join(Root, "memory")) != FileSystems.CGROUP_SUPER_MAGIC)
        {
            missing.Add("a cgroup v1 memory hierarchy at /sys/fs/cgroup/memory");
        }
        if (missing.Count == 0)
        {
            return;
        }
        string text = "cgroup v1 prerequisites missing: " + string.Join("; ", missing);
        string? ci = Environment.GetEnvironmentVariable("CI");
        if (string.Equals(ci, "true", StringComparison.OrdinalIgnoreCase) || ci == "1")
        {
            throw new InvalidOperationException(text + $" (CI={ci}: a missing prerequisite fails the run)");
        }
        Assert.Skip(text);
    }

    /// <summary>Open eventfds, inotify instances and cgroup files of this process (the runtime opens other files lazily, e.g. assemblies).</summary>
    public static int OpenFdCount() => Directory.GetFileSystemEntries("/proc/self/fd").Count(fd =>
    {
        string? target;
        try
        {
            target = new FileInfo(fd).LinkTarget;
        }
        catch (IOException)
        {
            return false;   // closed meanwhile
        }
        return target is not null
            && (target == "anon_inode:[eventfd]" || target == "anon_inode:inotify" || target.StartsWith(Root, StringComparison.Ordinal));
    });

    /// <summary>Waits (polling, bounded) for a condition the code under test reaches asynchronously.</summary>
    public static async Task WaitUntil(Func<bool> condition, string what, double seconds = 10)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail("timed out waiting for " + what);
            }
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }

    private static bool IsRootUid()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Uid:", StringComparison.Ordinal))
            {
                return line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "0";
            }
        }
        return false;
    }
}

/// <summary>Tests that count this process's fds, spawn children into cgroups, or block the shared loop run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CgroupCollection
{
    public const string Name = "cgroups";
}
