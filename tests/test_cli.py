from unlearnkit.cli import main


def test_demo_prints_accuracy_attack_success_and_unlearning_table(tmp_path, capsys):
    argv = ["demo", "--steps", "40", "--train-subset", "3000", "--out", str(tmp_path), "--quiet",
            "--device", "cpu", "--methods", "ssd,cf", "--alphas", "0.5,1.0", "--budget-fraction", "0.1"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "clean test accuracy" in first and "attack success rate" in first
    table = [line.split() for line in first.splitlines() if line.split()[:1] in (["ssd"], ["cf"])]
    assert [(row[0], row[1]) for row in table] == [("ssd", "0.5000"), ("ssd", "1.0000"), ("cf", "0.5000"), ("cf", "1.0000")]
    assert all(row[6] == "4" for row in table if row[0] == "cf")  # 10% of 40 steps
    assert main(argv[:10]) == 0
    assert "cached" in capsys.readouterr().out
