// Command natsauth sets up the platform's NATS trust outside `make run`
// (docker compose, deploy/nats): it keeps the chain in DIR/trust.json and
// writes DIR/auth.conf for nats-server to include, one credentials file per
// service in DIR/services/, DIR/services/clinic-issuer.json for the
// catalog (NATS_CLINIC_ISSUER: operators issue and revoke clinics'
// credentials through its admin API) and, for a first start, one
// credentials file per clinic in DIR/clinics/ (not revocable by the API,
// which has no record of them: prefer the API).
//
//	go run ./pkg/natsauth/cmd/natsauth init -dir deploy/nats/secrets -clinics tokyo-ginza-namiki-clinic,osaka-umeda-chayamachi-clinic
//
// DIR holds the operator's and account's seeds: keep it out of version
// control and readable by the operator only.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/saisei-health/platform/pkg/natsauth"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "init" {
		fmt.Fprintln(os.Stderr, "usage: natsauth init -dir DIR [-clinics a,b] [-jwt-dir /data/jwt]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("init", flag.ExitOnError)
	dir := fs.String("dir", "", "where to keep the trust chain and write the files")
	clinics := fs.String("clinics", "", "clinic ids to issue credentials for, comma-separated")
	jwtDir := fs.String("jwt-dir", "/data/jwt", "the nats-server's account JWT directory")
	_ = fs.Parse(os.Args[2:])
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "natsauth: -dir is required")
		os.Exit(2)
	}
	if err := initDir(*dir, *jwtDir, *clinics); err != nil {
		fmt.Fprintln(os.Stderr, "natsauth:", err)
		os.Exit(1)
	}
}

func initDir(dir, jwtDir, clinics string) error {
	trust, err := natsauth.LoadOrCreate(filepath.Join(dir, "trust.json"))
	if err != nil {
		return err
	}
	conf, err := trust.ServerConfig(jwtDir)
	if err != nil {
		return err
	}
	if err := natsauth.WriteCreds(filepath.Join(dir, "auth.conf"), []byte(conf)); err != nil {
		return err
	}
	for name := range natsauth.ServiceTrees {
		creds, _, err := trust.User(name, natsauth.ServiceUser(name))
		if err != nil {
			return err
		}
		if err := natsauth.WriteCreds(filepath.Join(dir, "services", name+".creds"), creds); err != nil {
			return err
		}
	}
	issuer, err := trust.ClinicIssuer()
	if err != nil {
		return err
	}
	if err := issuer.Save(filepath.Join(dir, "services", "clinic-issuer.json")); err != nil {
		return err
	}
	for _, id := range strings.Split(clinics, ",") {
		if id = strings.TrimSpace(id); id == "" {
			continue
		}
		creds, _, err := issuer.NewClinicUser(id)
		if err != nil {
			return err
		}
		if err := natsauth.WriteCreds(filepath.Join(dir, "clinics", id+".creds"), creds); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %s/auth.conf, %s/services/*.creds and %s/clinics/*.creds\n", dir, dir, dir)
	return nil
}
