package dev.ema4j.study;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ema4j.posthoc.Profile;
import java.util.List;
import org.junit.jupiter.api.Test;

class PostHocSweepTest {

    /** A run's decays are per step; its EMAs, clocked in updates every 16 steps, decay by α^16 per update. */
    @Test
    void classicEmasAreRebuiltWithTheirDecayPerUpdate() {
        RunSpec spec = StudyPlan.spec("posthoc12k", Scale.FULL, 1);
        assertEquals(16, spec.every());
        List<PostHocSweep.Target> targets = PostHocSweep.decays(spec, 70);
        for (int k = 0; k < spec.decays().size(); k++) {
            Profile.Exponential e = (Profile.Exponential) targets.get(k).profile();
            assertEquals(Math.pow(spec.decays().get(k), 16), e.decay(), 1e-15);
            assertEquals(70, e.t());
            assertEquals("rebuilt" + k, targets.get(k).model());
        }
        assertEquals(List.of("posthoc0.050", "posthoc0.100"), PostHocSweep.widths(List.of(0.05, 0.1), 70).stream()
                .map(PostHocSweep.Target::model).toList());
    }
}
