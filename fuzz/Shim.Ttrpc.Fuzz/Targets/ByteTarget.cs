namespace Shim.Ttrpc.Fuzz.Targets;

/// <summary>Runs one fuzz input; throws <see cref="FuzzFailure"/> when a property broke.</summary>
internal delegate void InputAction(ReadOnlySpan<byte> input);

/// <summary>
/// A fuzz target fed from bytes: its name (fuzz/run.sh TARGET), a seed corpus of valid inputs and
/// the action. The same action runs under AFL++ (SharpFuzz) and in the CsCheck property tests.
/// </summary>
internal sealed record ByteTarget(string Name, string Covers, Func<IEnumerable<(string Name, byte[] Bytes)>> Seeds, InputAction Run);

/// <summary>Helpers the targets share.</summary>
internal static class Fuzzing
{
    /// <summary>
    /// Runs <paramref name="action"/>; an exception it throws passes only when <paramref name="allowed"/>
    /// says so, else it becomes a <see cref="FuzzFailure"/> naming <paramref name="what"/>.
    /// </summary>
    public static T? Expect<T>(string what, Func<T> action, Func<Exception, bool> allowed)
    {
        try
        {
            return action();
        }
        catch (FuzzFailure)
        {
            throw;
        }
        catch (Exception ex) when (allowed(ex))
        {
            if (string.IsNullOrWhiteSpace(ex.Message))
            {
                throw new FuzzFailure($"{what}: {ex.GetType().Name} without a message", ex);
            }
            return default;
        }
        catch (Exception ex)
        {
            throw new FuzzFailure($"{what}: unexpected {ex.GetType().Name}: {ex.Message}", ex);
        }
    }

    /// <summary>Runs <paramref name="action"/>, which must not throw at all.</summary>
    public static T Never<T>(string what, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (FuzzFailure)
        {
            throw;
        }
        catch (Exception ex)
        {
            throw new FuzzFailure($"{what}: unexpected {ex.GetType().Name}: {ex.Message}", ex);
        }
    }

    /// <summary>Fails with <paramref name="message"/> unless <paramref name="condition"/> holds.</summary>
    public static void Check(bool condition, string message)
    {
        if (!condition)
        {
            throw new FuzzFailure(message);
        }
    }

    /// <summary>The input as UTF-8 text (invalid sequences replaced, as File.ReadAllText would).</summary>
    public static string Text(ReadOnlySpan<byte> input) => System.Text.Encoding.UTF8.GetString(input);

    /// <summary>Splits on <paramref name="separator"/> (for inputs that carry several strings).</summary>
    public static string[] Fields(ReadOnlySpan<byte> input, char separator) => Text(input).Split(separator);

    /// <summary>A directory of this process for files the targets write (bundles, cgroup trees, config files).</summary>
    public static string Scratch { get; } = MakeScratch();

    private static string MakeScratch()
    {
        string dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"rcs-fuzz-{Environment.ProcessId}")).FullName;
        // the test host and the AFL harness alike leave nothing of theirs in /tmp
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // a file still open or made unreadable by a target: what is left is named by the pid
            }
        };
        return dir;
    }

    /// <summary>A fresh subdirectory of <see cref="Scratch"/> named <paramref name="name"/>.</summary>
    public static string Fresh(string name)
    {
        string dir = Path.Combine(Scratch, name);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
        return Directory.CreateDirectory(dir).FullName;
    }

    /// <summary>Waits up to <paramref name="deadline"/> for <paramref name="task"/>; true once it ended, whether it failed or not (never throws).</summary>
    public static bool Ended(Task task, TimeSpan deadline)
    {
        try
        {
            return task.Wait(deadline);
        }
        catch (AggregateException)
        {
            return true;
        }
    }

    /// <summary>UTF-8 bytes of <paramref name="text"/>.</summary>
    public static byte[] Utf8(string text) => System.Text.Encoding.UTF8.GetBytes(text);
}
